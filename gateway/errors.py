"""The API's error hierarchy: each error carries its HTTP status and the spec's error code."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 500
    code = "INTERNAL_ERROR"
    message = "internal server error"

    def __init__(
        self, message: str | None = None, details: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.details = details
        self.headers = headers


class ValidationError(ApiError):
    status, code, message = 400, "VALIDATION_ERROR", "invalid input"


class Unauthorized(ApiError):
    status, code, message = 401, "UNAUTHORIZED", "invalid or missing token"


class Forbidden(ApiError):
    status, code, message = 403, "FORBIDDEN", "no permission"


class NotFound(ApiError):
    status, code, message = 404, "NOT_FOUND", "resource not found"


class MethodNotAllowed(ApiError):
    status, code, message = 405, "METHOD_NOT_ALLOWED", "method not allowed"


class InsufficientStock(ApiError):
    status, code, message = 409, "INSUFFICIENT_STOCK", "not enough seats"


class MaxPerUserExceeded(ApiError):
    status, code, message = 409, "MAX_PER_USER_EXCEEDED", "user limit reached"


class Conflict(ApiError):
    status, code, message = 409, "CONFLICT", "that already exists"


class EmailTaken(ApiError):
    status, code, message = 409, "EMAIL_ALREADY_REGISTERED", "an account with this email already exists"


class InvalidTransition(ApiError):
    status, code, message = 409, "INVALID_STATUS_TRANSITION", "that status change is not allowed"


class BookingClosed(ApiError):
    status, code, message = 409, "BOOKING_CLOSED", "booking for this show has closed"


class PaymentRequired(ApiError):
    status, code, message = 402, "PAYMENT_REQUIRED", "this booking has no successful payment yet"


class PaymentFailed(ApiError):
    status, code, message = 402, "PAYMENT_FAILED", "payment processing failed"


class PaymentInProgress(ApiError):
    status, code = 409, "PAYMENT_IN_PROGRESS"
    message = "the payment is still being processed; ask again shortly"


class RefundNotAllowed(ApiError):
    status, code, message = 409, "REFUND_NOT_ALLOWED", "this payment cannot be refunded"


class ReservationExpired(ApiError):
    status, code, message = (
        410,
        "RESERVATION_EXPIRED",
        "the reservation timed out and its seats were released",
    )


class AgeRestricted(ApiError):
    status, code = 403, "AGE_RESTRICTED"
    message = "this event has a minimum age; add your birth date to your profile"


class QueuePassRequired(ApiError):
    status, code = 403, "QUEUE_PASS_REQUIRED"
    message = "this sale has a waiting room: join it and send the pass you get in X-Queue-Pass"


class QueuePassRefused(ApiError):
    """QUEUE_PASS_INVALID or QUEUE_PASS_EXPIRED, with the reason as the message."""

    status = 403

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ProofOfWorkRequired(ApiError):
    """details: {challenge, bits}: solve it and join again with {"pow": {challenge, nonce}}."""

    status, code = 403, "PROOF_OF_WORK_REQUIRED"
    message = "this waiting room asks each new place for a small proof of work"


class TenantSuspended(ApiError):
    status, code = 403, "TENANT_SUSPENDED"
    message = "this organisation is suspended"


class EmailNotVerified(ApiError):
    status, code = 403, "EMAIL_NOT_VERIFIED"
    message = "confirm your e-mail address first (the link we mailed; POST /api/v1/auth/verify-email/resend)"


class NotInLine(ApiError):
    status, code = 409, "NOT_IN_LINE"
    message = "you are not in this waiting room's line: join it first"


class QueueTicketInvalid(ApiError):
    status, code = 401, "QUEUE_TICKET_INVALID"
    message = "the queue ticket is not valid; join the waiting room again for a new one"


class SeatsBelowTaken(ApiError):
    status, code, message = 409, "SEATS_BELOW_TAKEN", "fewer seats than are already held or sold"


class EventCancelled(ApiError):
    status, code, message = 409, "EVENT_CANCELLED", "the organizer cancelled this event: nothing more is sold"


class RefundSuperseded(ApiError):
    status, code = 409, "REFUND_SUPERSEDED"
    message = "the event was cancelled: every booking is refunded in full, this request with it"


class VoucherNotFound(ApiError):
    status, code, message = 404, "VOUCHER_NOT_FOUND", "no such voucher of yours"


class VoucherUnavailable(ApiError):
    status, code, message = 409, "VOUCHER_UNAVAILABLE", "this voucher is used, or held for another booking"


class VoucherNotApplicable(ApiError):
    status, code, message = (
        409,
        "VOUCHER_NOT_APPLICABLE",
        "a voucher applies to a reservation not yet being paid for",
    )


class PromoCodeInvalid(ApiError):
    status, code, message = 400, "PROMO_CODE_INVALID", "no such promo code for this event"


class PromoCodeExpired(ApiError):
    status, code, message = 400, "PROMO_CODE_EXPIRED", "this promo code is not valid at this time"


class PromoCodeNotApplicable(ApiError):
    status, code, message = 400, "PROMO_CODE_NOT_APPLICABLE", "this promo code does not apply to this booking"


class PromoCodeUsedUp(ApiError):
    status, code, message = 409, "PROMO_CODE_USED_UP", "this promo code has no uses left"


class PromoCodeLimitReached(ApiError):
    status, code, message = (
        409,
        "PROMO_CODE_LIMIT_REACHED",
        "you have used this promo code as often as it allows",
    )


class PayloadTooLarge(ApiError):
    status, code, message = 413, "PAYLOAD_TOO_LARGE", "request body too large"


class IdempotencyKeyReused(ApiError):
    status, code = 422, "IDEMPOTENCY_KEY_REUSED"
    message = "this idempotency key was used with a different request body"


class RateLimited(ApiError):
    status, code, message = 429, "RATE_LIMITED", "too many requests; retry after the Retry-After seconds"


class ServiceUnavailable(ApiError):
    status, code, message = 503, "SERVICE_UNAVAILABLE", "service unavailable"


class KafkaUnavailable(ServiceUnavailable):
    code, message = "QUEUE_UNAVAILABLE", "the reservation queue is unavailable; nothing was accepted"


class RedisUnavailable(ServiceUnavailable):
    code, message = "STORE_UNAVAILABLE", "the sale store is unavailable; nothing was accepted"


class RequestExpired(ServiceUnavailable):
    code = "REQUEST_EXPIRED"
    message = "the request was not processed before its deadline and was not applied; retry"
