"""The admitter's follow-up: people called at their turn while away are told "it's your turn, you
have N minutes" (the room's claim window), and those whose window ran out that it passed, by
Web Push or e-mail, as they asked (waiting_room/notices.py).

Sending never holds up an admission tick: each notice is a task of its own, at most `concurrency`
at once; a push service that answers 404/410 has dropped the subscription, and so do we. A
notice that fails is not retried: the claim window is minutes, and the page shows the turn to
anyone who opens it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from booking_rush.services.mail import Mailer, MailError
from booking_rush.services.web_push import Outcome, PushSender
from booking_rush.telemetry import worker_metrics
from waiting_room.notices import NoticeRecord, message
from waiting_room.room import WaitingRoom

log = logging.getLogger("workers.turn_notices")


class TurnNotices:
    def __init__(
        self, room: WaitingRoom, push: PushSender | None, mailer: Mailer | None, concurrency: int = 32
    ) -> None:
        self.room = room
        self.push = push
        self.mailer = mailer
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task] = set()

    def tell(self, event_id: str, tick: dict) -> None:
        """Start telling everyone this tick called or let go (lua/queue_admit.lua's called and
        missed)."""
        minutes = max(1, round(tick.get("claim_ms", 180_000) / 60_000))
        ttl_s = tick.get("claim_ms", 180_000) // 1000  # a notice no longer true is not delivered
        for user, _ticket, raw in tick["called"]:
            self._start(event_id, user, raw, "called", minutes, ttl_s)
        for user, raw in tick["missed"]:
            self._start(event_id, user, raw, "missed", minutes, 3600)

    def _start(self, event_id: str, user: str, raw: str, kind: str, minutes: int, ttl_s: int) -> None:
        if not raw:
            return
        task = asyncio.create_task(self._send(event_id, user, raw, kind, minutes, ttl_s))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, event_id: str, user: str, raw: str, kind: str, minutes: int, ttl_s: int) -> None:
        record = NoticeRecord.from_json(raw)
        title, body = message(kind, record.lang, minutes)
        async with self._slots:
            if record.push is not None:
                outcome = await self._push(record, kind, title, body, event_id, ttl_s)
                if outcome.result == "gone":
                    await self.room.forget_subscription(event_id, user, raw)
            elif record.email is not None:
                outcome = await self._mail(record, title, body)
            else:
                return
        worker_metrics.TURN_NOTICES.labels(kind, outcome.result).inc()
        if outcome.result != "sent":
            log.info("%s notice to %s for %s: %s %s", kind, user, event_id, outcome.result, outcome.detail)

    async def _push(
        self, record: NoticeRecord, kind: str, title: str, body: str, event_id: str, ttl_s: int
    ) -> Outcome:
        if self.push is None:
            return Outcome("refused", "Web Push is not configured (BR_VAPID_PRIVATE_KEY)")
        notice = {"kind": kind, "title": title, "body": body, "url": record.page, "tag": f"turn-{event_id}"}
        return await self.push.send(record.push, notice, ttl_s)

    async def _mail(self, record: NoticeRecord, title: str, body: str) -> Outcome:
        if self.mailer is None:
            return Outcome("refused", "no mailer")
        try:
            await self.mailer.send(record.email, title, f"{body}\n\n{record.page}\n")
        except MailError as exc:
            return Outcome("failed", str(exc))
        return Outcome("sent")

    async def drain(self) -> None:
        """Wait for the notices under way (at a stop, and in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


@contextlib.asynccontextmanager
async def turn_notices(room: WaitingRoom, settings) -> AsyncIterator[TurnNotices]:
    """The admitter's notices for the life of the process (Web Push when a VAPID key is set);
    those under way are finished at a stop."""
    key = settings.push.vapid_key
    push = PushSender(key, settings.push.subject, settings.push.allow_test_endpoints) if key else None
    if push is not None:
        await push.start()
    notices = TurnNotices(room, push, Mailer(settings.mail))
    try:
        yield notices
    finally:
        await notices.drain()
        if push is not None:
            await push.close()
