"""Auth endpoints (spec §4.2, §6.3): register, login, refresh, logout, me."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from aiohttp import web

from booking_rush.services.mail import MailError
from gateway import accounts, appkeys, errors
from gateway.audit_trail import audit
from gateway.auth import ACCESS_TOKEN_TTL_S, current_principal, issue_access_token
from gateway.middlewares import take_token
from gateway.payloads import read_json_object
from gateway.responses import ok

log = logging.getLogger("gateway.routes.auth")


def session_answer(request: web.Request, account: accounts.Account, grant: accounts.Grant) -> web.Response:
    settings = request.app[appkeys.SETTINGS]
    access = issue_access_token(
        settings.jwt_secret,
        user_id=account.id,
        role=account.role,
        tenant_id=account.tenant_id,
        email=account.email,
        ttl_s=ACCESS_TOKEN_TTL_S,
        birth_date=account.birth_date,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        session_id=grant.session_id,
        email_verified=account.email_verified,
    )
    return ok(
        {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_TTL_S,
            "refresh_token": grant.refresh_token,
            "user": account.public(),
        }
    )


async def new_session(request: web.Request, account: accounts.Account, action: str) -> web.Response:
    """A new session for `account` (a refresh-token family of its own), recorded as `action`."""
    async with request.app[appkeys.PG_POOL].acquire() as conn:
        grant = await accounts.new_refresh_token(conn, account.id)
    await audit(request, action, "user", account.id, actor_id=account.id, tenant_id=account.tenant_id)
    return session_answer(request, account, grant)


def account_subject(body: dict[str, Any]) -> str:
    """The account a request names (its tenant and e-mail, as sent), as a rate-limit subject:
    hashed, so no client text shapes a key."""
    named = f"{body.get('tenant')}\n{str(body.get('email')).strip().lower()}"
    return "account:" + hashlib.sha256(named.encode(errors="replace")).hexdigest()[:32]


async def register(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    await take_token(request, "register", account_subject(body))  # spec §8.4, per account named
    account = await accounts.register(
        request.app[appkeys.PG_POOL],
        request.app[appkeys.PASSWORD_HASHER],
        tenant=body.get("tenant"),
        email=body.get("email"),
        password=body.get("password"),
        full_name=body.get("full_name"),
    )
    await audit(
        request, "user.registered", "user", account.id, actor_id=account.id, tenant_id=account.tenant_id
    )
    sent = await _mail_verification(request, account)
    return ok({"user": account.public(), "verification_sent": sent}, status=201)


async def _mail_verification(request: web.Request, account: accounts.Account) -> bool:
    """Mail the account a verification link; whether it went (a mail server away does not undo
    the registration: the buyer asks for the link again)."""
    token = await accounts.start_email_verification(request.app[appkeys.PG_POOL], account.id)
    if token is None:
        return False
    # The token after '#': a browser does not send it to any server, nor does a proxy log it.
    link = f"{request.url.origin()}/verify-email#token={token}"
    try:
        await request.app[appkeys.MAILER].send(
            account.email,
            "Confirm your e-mail address for Booking Rush",
            f"Confirm this address to queue and book (the link works once, for "
            f"{int(accounts.VERIFICATION_TTL.total_seconds() // 3600)} hours):\n\n{link}\n\n"
            "If you did not register, ignore this mail.",
        )
    except MailError:
        log.warning("verification mail to account %s not sent", account.id, exc_info=True)
        return False
    return True


async def verify_email(request: web.Request) -> web.Response:
    """The mailed link is used: the address is verified and a fresh session says so."""
    body = await read_json_object(request)
    pool = request.app[appkeys.PG_POOL]
    account = await accounts.finish_email_verification(pool, body.get("token"))
    return await new_session(request, account, "user.email_verified")


async def resend_verification(request: web.Request) -> web.Response:
    principal = current_principal(request)
    await take_token(request, "verify_mail", "user:" + principal.user_id)
    account = await accounts.profile(request.app[appkeys.PG_POOL], principal.user_id)
    if account.email_verified:
        return ok({"sent": False, "email_verified": True})
    if not await _mail_verification(request, account):
        raise errors.ServiceUnavailable("mail is unavailable; try again shortly")
    return ok({"sent": True, "email_verified": False})


async def login(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    await take_token(request, "login", account_subject(body))  # spec §8.4: a brute force aims at an account
    pool = request.app[appkeys.PG_POOL]
    try:
        account = await accounts.login(
            pool,
            request.app[appkeys.PASSWORD_HASHER],
            tenant=body.get("tenant"),
            email=body.get("email"),
            password=body.get("password"),
        )
    except (errors.Unauthorized, errors.Forbidden) as refusal:
        await _audit_failed_login(request, body, refusal)
        raise
    return await new_session(request, account, "user.login")


async def _audit_failed_login(request: web.Request, body: dict[str, Any], refusal: errors.ApiError) -> None:
    """Who was tried, in which tenant, and why it was refused: never the password tried. Both
    refusals come after the email and tenant were found valid, so they are safe to record."""
    email, slug = str(body.get("email")).strip().lower(), body.get("tenant")
    tenant_id = None
    try:
        async with request.app[appkeys.PG_POOL].acquire() as conn:
            tenant_id = await accounts.tenant_id_of(conn, slug)
    except Exception:  # the row goes out without its tenant id rather than not at all
        log.warning("tenant %r of a failed login not resolved", slug, exc_info=True)
    await audit(
        request,
        "user.login_failed",
        "user",
        email,
        tenant_id=tenant_id,
        email=email,
        tenant=slug,
        reason=refusal.message,
    )


async def refresh(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    account, fresh = await accounts.rotate(request.app[appkeys.PG_POOL], body.get("refresh_token"))
    return session_answer(request, account, fresh)


async def logout(request: web.Request) -> web.Response:
    principal = current_principal(request)
    body = await read_json_object(request)
    session_id, revoked = await accounts.logout(
        request.app[appkeys.PG_POOL], principal.user_id, body.get("refresh_token")
    )
    if session_id is not None:  # its access tokens too, not only its refresh tokens
        await request.app[appkeys.REVOCATIONS].revoke("session", session_id)
    await audit(request, "user.logout", "user", principal.user_id, session_revoked=revoked)
    return ok({"revoked": revoked})


async def me(request: web.Request) -> web.Response:
    principal = current_principal(request)
    account = await accounts.profile(request.app[appkeys.PG_POOL], principal.user_id)
    return ok({"user": account.public()})


async def update_me(request: web.Request) -> web.Response:
    principal = current_principal(request)
    body = await read_json_object(request)
    account = await accounts.update_profile(request.app[appkeys.PG_POOL], principal.user_id, body)
    # The names of the fields changed, not their values (a birth date is personal data).
    changed = sorted(f for f in ("full_name", "birth_date") if body.get(f) is not None)
    await audit(request, "user.profile_updated", "user", principal.user_id, fields=changed)
    return ok({"user": account.public()})


async def forgot_password(request: web.Request) -> web.Response:
    """Mails a single-use reset token; answers the same whether or not the account exists (the
    per-account limit on reset mails too: it counts the account named, existing or not)."""
    body = await read_json_object(request)
    await take_token(request, "reset_mail", account_subject(body))
    started = await accounts.start_password_reset(
        request.app[appkeys.PG_POOL], tenant=body.get("tenant"), email=body.get("email")
    )
    if started is not None:
        account, token = started
        try:
            await request.app[appkeys.MAILER].send(
                account.email,
                "Reset your Booking Rush password",
                f"Someone asked to reset your password. If it was you, use this token within "
                f"{int(accounts.RESET_TOKEN_TTL.total_seconds() // 60)} minutes:\n\n{token}\n\n"
                "If it was not you, ignore this mail: your password stays as it is.",
            )
        except MailError as exc:
            raise errors.ServiceUnavailable("mail is unavailable; try again shortly") from exc
        # No actor: anyone may ask for a reset; the row says whose account it was asked for.
        await audit(request, "user.password_reset_requested", "user", account.id, tenant_id=account.tenant_id)
    return ok({"sent": True})


async def reset_password(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    account = await accounts.finish_password_reset(
        request.app[appkeys.PG_POOL],
        request.app[appkeys.PASSWORD_HASHER],
        token=body.get("token"),
        password=body.get("password"),
    )
    try:
        await request.app[appkeys.REVOCATIONS].revoke("user", account.id)
    except errors.ServiceUnavailable:
        # The password is changed and the token spent, so the request cannot be repeated: the
        # old access tokens expire on their own (within 15 minutes); the failure is logged.
        pass
    await audit(
        request, "user.password_reset", "user", account.id, actor_id=account.id, tenant_id=account.tenant_id
    )
    return ok({"reset": True})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/auth/forgot-password", forgot_password, name="forgot_password")
    app.router.add_post("/api/v1/auth/reset-password", reset_password, name="reset_password")
    app.router.add_post("/api/v1/auth/register", register, name="register")
    app.router.add_post("/api/v1/auth/verify-email", verify_email, name="verify_email")
    app.router.add_post("/api/v1/auth/verify-email/resend", resend_verification, name="resend_verification")
    app.router.add_post("/api/v1/auth/login", login, name="login")
    app.router.add_post("/api/v1/auth/refresh", refresh, name="refresh")
    app.router.add_post("/api/v1/auth/logout", logout, name="logout")
    app.router.add_get("/api/v1/auth/me", me, name="me")
    app.router.add_put("/api/v1/auth/me", update_me, name="update_me")
