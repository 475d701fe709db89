"""A Web Push service for tests, on loopback, and the browser side of a subscription.

`Browser.subscribe` makes what a browser's PushManager makes (a P-256 key pair and a 16-byte
auth secret); the service keeps every message it is sent and reads it as a browser would: the
VAPID signature checked with PyJWT against the key in the request (RFC 8292), the body decrypted
with the subscription's private key (RFC 8291, aes128gcm). So the encryption is really checked:
a message encrypted for anyone else, or unsigned, is not `read`.
"""

from __future__ import annotations

import asyncio
import base64
import os
from dataclasses import dataclass, field

import http_ece
import jwt
import orjson
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Received:
    """One message as the push service got it: headers, the body as sent, and what it says."""

    path: str
    headers: dict[str, str]
    body: bytes
    vapid_claims: dict | None = None
    vapid_key: str | None = None
    message: dict | None = None


@dataclass
class BrowserSubscription:
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes

    def to_json(self) -> dict:
        point = self.private_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "keys": {"p256dh": b64url(point), "auth": b64url(self.auth)}}


@dataclass
class PushService:
    """POST /push/<id>: 201, or the status set in `answers` for that id."""

    answers: dict[str, int] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    subscriptions: dict[str, BrowserSubscription] = field(default_factory=dict)
    base: str = ""
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def subscribe(self) -> BrowserSubscription:
        """A new subscription of a (pretend) browser at this service."""
        sid = b64url(os.urandom(9))
        sub = BrowserSubscription(
            f"{self.base}/push/{sid}", ec.generate_private_key(ec.SECP256R1()), os.urandom(16)
        )
        self.subscriptions[f"/push/{sid}"] = sub
        return sub

    async def handle(self, request: web.Request) -> web.Response:
        got = Received(request.path, dict(request.headers), await request.read())
        sub = self.subscriptions.get(request.path)
        if sub is not None:
            self._read(got, sub)
        async with self._arrived:
            self.received.append(got)
            self._arrived.notify_all()
        return web.Response(status=self.answers.get(request.path.rsplit("/", 1)[-1], 201))

    @staticmethod
    def _read(got: Received, sub: BrowserSubscription) -> None:
        scheme, _, params = got.headers.get("Authorization", "").partition(" ")
        parts = dict(p.split("=", 1) for p in params.split(",") if "=" in p)
        if scheme != "vapid" or "t" not in parts or "k" not in parts:
            return
        signer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(parts["k"]))
        origin = sub.endpoint.split("/push/")[0]
        try:
            got.vapid_claims = jwt.decode(parts["t"], signer, algorithms=["ES256"], audience=origin)
        except jwt.InvalidTokenError:
            return
        got.vapid_key = parts["k"]
        if got.headers.get("Content-Encoding") == "aes128gcm":
            plain = http_ece.decrypt(
                got.body, private_key=sub.private_key, auth_secret=sub.auth, version="aes128gcm"
            )
            got.message = orjson.loads(plain)

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        """The first `count` messages, once they have come."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.received) >= count), timeout)
        return self.received[:count]

    def to(self, sub: BrowserSubscription) -> list[Received]:
        path = sub.endpoint[len(self.base) :]
        return [r for r in self.received if r.path == path]


async def start_push_service() -> tuple[PushService, web.AppRunner]:
    service = PushService()
    app = web.Application()
    app.router.add_post("/push/{sid}", service.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    service.base = f"http://127.0.0.1:{port}"
    return service, runner
