"""Web Push: a message to a browser's push subscription (RFC 8030), its payload encrypted for that
subscription (RFC 8291, aes128gcm) and the request signed with our VAPID key (RFC 8292), the
cryptography by pywebpush / py-vapid.

The endpoint is a URL a browser handed us, so anyone can hand us any URL: the sender posts only
to `https` endpoints whose every address (after DNS resolution, and the connection made to the
address checked) is public: no loopback, private, link-local, shared, multicast or reserved
range. No redirect is followed, the request has short timeouts, the payload a size cap and the
answer is read no further than a few KiB. Tests run a push service of their own on loopback:
`allow_test_endpoints` (BR_PUSH_TEST_ENDPOINTS=1, never in a deployment) lifts the https and
address rules, nothing else.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
import orjson
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid02, b64urlencode
from pywebpush import WebPusher

from booking_rush.services.env import env_bool, env_str

MAX_ENDPOINT_CHARS = 1024
# One aes128gcm record of 4,096 bytes at most (RFC 8291 §4): its header (86 bytes), padding
# delimiter and tag leave 3,993 for the message; push services refuse more.
MAX_PAYLOAD_BYTES = 3000
CONNECT_TIMEOUT_S = 3.0
TOTAL_TIMEOUT_S = 5.0
MAX_ANSWER_BYTES = 4096
VAPID_LIFETIME_S = 12 * 3600  # RFC 8292 §2: at most 24 hours


class PushRefused(ValueError):
    """A subscription or endpoint we will not post to; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnsafeAddress(OSError):
    """An endpoint's host resolved to an address the sender does not post to."""


def _b64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise PushRefused("keys must be base64url") from exc


def address_problem(address: str) -> str | None:
    """Why we do not post to this IP address, or None if it is a public one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # a zone id (fe80::1%eth0) is link-local
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is loopback
    if not ip.is_global or ip.is_multicast:
        return f"{ip} is not a public address"
    return None


def endpoint_problem(endpoint: str, allow_test_endpoints: bool = False) -> str | None:
    """Why this push endpoint is refused before any lookup (scheme, shape, an address written in
    it), or None. A host name is checked again once resolved (PublicResolver)."""
    if not isinstance(endpoint, str) or not 1 <= len(endpoint) <= MAX_ENDPOINT_CHARS:
        return f"endpoint must be a URL of at most {MAX_ENDPOINT_CHARS} characters"
    try:
        url = urlsplit(endpoint)
        port = url.port
    except ValueError:
        return "endpoint is not a URL"
    if url.scheme != "https" and not (allow_test_endpoints and url.scheme == "http"):
        return "endpoint must be an https URL"
    if not url.hostname or url.username is not None or url.password is not None:
        return "endpoint must name a host, without credentials"
    if port == 0:
        return "endpoint's port must not be 0"
    try:
        ipaddress.ip_address(url.hostname.split("%", 1)[0])
    except ValueError:
        return None  # a name: checked when resolved
    return None if allow_test_endpoints else address_problem(url.hostname)


@dataclass(frozen=True)
class Subscription:
    """A browser's PushSubscription (its toJSON(): endpoint, keys.p256dh, keys.auth), checked."""

    endpoint: str
    p256dh: str
    auth: str

    @classmethod
    def parse(cls, value: object, allow_test_endpoints: bool = False) -> Subscription:
        """From a client's JSON; raises PushRefused with what is wrong."""
        if not isinstance(value, dict) or not isinstance(value.get("keys"), dict):
            raise PushRefused("subscription must be {endpoint, keys: {p256dh, auth}}")
        endpoint, keys = value.get("endpoint"), value["keys"]
        problem = endpoint_problem(endpoint, allow_test_endpoints)
        if problem:
            raise PushRefused(problem)
        p256dh, auth = keys.get("p256dh"), keys.get("auth")
        if not isinstance(p256dh, str) or not isinstance(auth, str) or len(p256dh) > 100 or len(auth) > 40:
            raise PushRefused("keys.p256dh and keys.auth must be base64url text")
        point = _b64url(p256dh)
        try:  # a P-256 point in uncompressed form, on the curve
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        except ValueError as exc:
            raise PushRefused("keys.p256dh must be a P-256 public key") from exc
        if len(point) != 65 or len(_b64url(auth)) != 16:
            raise PushRefused("keys.p256dh must be 65 bytes and keys.auth 16")
        return cls(endpoint, p256dh, auth)

    def to_json(self) -> bytes:
        return orjson.dumps({"endpoint": self.endpoint, "keys": {"p256dh": self.p256dh, "auth": self.auth}})

    @classmethod
    def from_json(cls, raw: bytes | str) -> Subscription:
        value = orjson.loads(raw)
        return cls(value["endpoint"], value["keys"]["p256dh"], value["keys"]["auth"])


class VapidKey:
    """Our application server key (a P-256 key pair): the private half signs each push request,
    the public half is what the page subscribes with (applicationServerKey)."""

    def __init__(self, private_key: str) -> None:
        """`private_key`: the raw 32-byte private value, base64url (as `generate()` makes)."""
        raw = _b64url(private_key.strip())
        if len(raw) != 32:
            raise ValueError("a VAPID private key is 32 bytes, base64url")
        self._vapid = Vapid02.from_raw(private_key.strip().encode())

    @staticmethod
    def generate() -> str:
        key = ec.generate_private_key(ec.SECP256R1())
        return b64urlencode(key.private_numbers().private_value.to_bytes(32, "big"))

    @property
    def public_key(self) -> str:
        point = self._vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return b64urlencode(point)

    def authorization(self, endpoint: str, subject: str, now: float) -> str:
        url = urlsplit(endpoint)
        claims = {"aud": f"{url.scheme}://{url.netloc}", "exp": int(now) + VAPID_LIFETIME_S, "sub": subject}
        return self._vapid.sign(claims)["Authorization"]


class PublicResolver(AbstractResolver):
    """Resolves as usual, then refuses a host with any address that is not public: the sender
    connects only to the addresses checked here, so a name cannot be re-pointed in between."""

    def __init__(self, allow_test_endpoints: bool = False) -> None:
        self._resolver = ThreadedResolver()
        self._allow_test_endpoints = allow_test_endpoints

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        hosts = await self._resolver.resolve(host, port, family)
        if not self._allow_test_endpoints:
            for entry in hosts:
                problem = address_problem(entry["host"])
                if problem:
                    raise UnsafeAddress(f"{host}: {problem}")
        return hosts

    async def close(self) -> None:
        await self._resolver.close()


@dataclass(frozen=True)
class Outcome:
    """sent (the push service took it), gone (404/410: the subscription is no more), refused
    (we would not post it: `detail` says why) or failed (an error status, a timeout, no route)."""

    result: str
    detail: str = ""


class PushSender:
    """Posts encrypted, signed messages; one HTTP session, opened by `start`, closed by `close`."""

    def __init__(
        self,
        key: VapidKey,
        subject: str,
        allow_test_endpoints: bool = False,
        timeout_s: float = TOTAL_TIMEOUT_S,
    ) -> None:
        self.key = key
        self.timeout_s = timeout_s
        self.subject = subject  # VAPID `sub`: a mailto: or https: contact for push services
        self.allow_test_endpoints = allow_test_endpoints
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            resolver=PublicResolver(self.allow_test_endpoints), use_dns_cache=False, limit=64
        )
        timeout = aiohttp.ClientTimeout(
            total=self.timeout_s, sock_connect=min(CONNECT_TIMEOUT_S, self.timeout_s)
        )
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, subscription: Subscription, message: dict, ttl_s: int) -> Outcome:
        assert self._session is not None, "PushSender.start first"
        problem = endpoint_problem(subscription.endpoint, self.allow_test_endpoints)
        if problem:
            return Outcome("refused", problem)
        data = orjson.dumps(message)
        if len(data) > MAX_PAYLOAD_BYTES:
            return Outcome("refused", f"message of {len(data)} bytes (at most {MAX_PAYLOAD_BYTES})")
        body = WebPusher(orjson.loads(subscription.to_json())).encode(data, "aes128gcm")["body"]
        headers = {
            "Authorization": self.key.authorization(subscription.endpoint, self.subject, time.time()),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(max(0, int(ttl_s))),
            "Urgency": "high",
        }
        try:
            async with self._session.post(
                subscription.endpoint, data=body, headers=headers, allow_redirects=False
            ) as answer:
                await answer.content.read(MAX_ANSWER_BYTES)  # a body is not needed; a huge one is not read
                status = answer.status
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, UnsafeAddress):
                return Outcome("refused", str(exc.os_error))
            return Outcome("failed", f"cannot connect: {exc.os_error}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Outcome("failed", type(exc).__name__)
        if status in (404, 410):
            return Outcome("gone", str(status))
        if 200 <= status < 300:
            return Outcome("sent", str(status))
        return Outcome("failed", f"push service answered {status}")


@dataclass(frozen=True)
class PushSettings:
    """BR_VAPID_PRIVATE_KEY (VapidKey.generate(); unset: no Web Push, the page does not offer
    it), BR_VAPID_SUBJECT (a contact push services may use), BR_PUSH_TEST_ENDPOINTS (tests)."""

    vapid_private_key: str = ""
    subject: str = "mailto:operations@booking-rush.invalid"
    allow_test_endpoints: bool = False

    @classmethod
    def from_env(cls) -> PushSettings:
        settings = cls(
            vapid_private_key=env_str("BR_VAPID_PRIVATE_KEY", ""),
            subject=env_str("BR_VAPID_SUBJECT", cls.subject),
            allow_test_endpoints=env_bool("BR_PUSH_TEST_ENDPOINTS"),
        )
        _ = settings.vapid_key  # a bad key fails at start-up
        return settings

    @property
    def vapid_key(self) -> VapidKey | None:
        # Not kept on the settings: they are pickled to each gateway process, a key is not.
        return _vapid_key(self.vapid_private_key) if self.vapid_private_key else None


@functools.lru_cache(maxsize=4)
def _vapid_key(private_key: str) -> VapidKey:
    return VapidKey(private_key)
