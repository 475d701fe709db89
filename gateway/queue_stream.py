"""Live position over Server-Sent Events: each process's hub of open streams (the route,
`GET /api/v1/queue/stream?event_id=&ticket=`, is in gateway/routes/queue.py).

Redis work does not grow with the number of connected clients:
- each process hears one broadcast per room per tick (the admitter's, via gateway/room_view.py) and
  derives every client's place from it: ahead = ticket - head - 1 - offset, where head is the
  room's last ticket admitted or removed and offset counts those who left out of turn (POST
  /queue/leave; read at connect and refreshed by the corrections below, so a place shown may
  trail such a departure by one correction period);
- exact ranks are re-read in one round trip per room per correction period, for at most
  `stream_correction_batch` clients (the ones in doubt first, then in rotation);
- presence: a stream marks its user as held by this process once, at open; the process then
  renews one lease per room per heartbeat (lua/queue_stream.lua), whatever its number of streams.

Event ids describe the standing sent, so a client resuming with `Last-Event-ID` is not sent again
what it already has; the pass (event `admitted`) is always sent, and then the stream ends.

The ticket a stream opens with lives minutes, not hours (it sits in a URL: logs, history): with
the heartbeat after it is half spent, the client is sent a fresh one (event `ticket`, no id), which
the page opens its next stream with, so a stream reconnecting after an hour in line still opens.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass

import orjson

from booking_rush.contract.messages import now_ms
from booking_rush.telemetry import gateway_metrics
from gateway import errors
from gateway.event_store import iso_ms
from gateway.queue_ticket import issue_queue_ticket
from waiting_room.eta import Rule, eta_fields
from waiting_room.passes import QueuePasses
from waiting_room.room import Standing, WaitingRoom, pace_of

log = logging.getLogger("gateway.queue_stream")

RETRY_MS = 3000  # how soon a browser reconnects after a lost stream
ENDS_STREAM = ("admitted", "sold_out", "open", "not_joined")
# A named event, not a comment: EventSource hides comments from the page, which wants to know
# the stream is alive.
HEARTBEAT = b"event: heartbeat\ndata: {}\n\n"
# The admission tick's room state -> what a waiting client is told.
ROOM_STATE = {"admitting": "waiting", "off": "open"}


def sse(kind: str, event_id: str, data: bytes) -> bytes:
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (event_id.encode(), kind.encode(), data)


@dataclass(eq=False)
class Fanout:
    """Times one tick's fan-out: done when every client it woke has written."""

    started: float
    pending: int = 0
    sealed: bool = False  # every client woken: pending reaching 0 now means done

    def follow(self, client: StreamClient) -> None:
        if client.fanout is None:
            client.fanout = self
            self.pending += 1

    def written(self, hub: StreamHub) -> None:
        self.pending -= 1
        if self.pending == 0 and self.sealed:
            hub.fanouts_ms.append((time.perf_counter() - self.started) * 1000)


@dataclass(eq=False, slots=True)  # slots: tens of thousands of these live in one process
class StreamClient:
    """One open stream. The tick fills `standing` (latest only: a slow reader skips stale places)
    and `extra` (heartbeats, the pass); the request's handler writes them out when woken."""

    user_id: str
    ticket: int | None
    offset: int = 0
    in_doubt: bool = True  # place not known exactly: corrected first
    last_id: str = ""
    standing: bytes | None = None
    extra: list[bytes] | None = None
    ended: bool = False
    # A future made only while the handler waits, set to wake it: lighter than an asyncio.Event
    # (whose deque of waiters every idle client would carry).
    waiter: asyncio.Future | None = None
    pending: bool = False
    fanout: Fanout | None = None  # the tick whose news is waiting to be written
    renew_ticket_at: float = 0.0  # when the ticket the client holds is half spent (epoch s)

    def wake(self) -> None:
        self.pending = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def news(self) -> None:
        """Until there is something to write (or the stream is to end)."""
        if not self.pending:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None

    def written(self, hub: StreamHub) -> None:
        if self.fanout is not None:
            self.fanout.written(hub)
            self.fanout = None

    def send_standing(self, event_id: str, payload: dict) -> bool:
        eta_id = _eta_id(payload["eta_range_seconds"])
        sid = f"{payload['state']}.{payload['ahead']}.{payload['waiting']}.{eta_id}"
        changed = self.send_encoded(sid, orjson.dumps(payload))
        self.ended = self.ended or (changed and payload["state"] in ENDS_STREAM)
        return changed

    def send_encoded(self, sid: str, data: bytes) -> bool:
        """A standing already encoded, with its id; False if the client has it already."""
        if sid == self.last_id:
            return False
        self.last_id = sid
        self.standing = sse("standing", sid, data)
        self.wake()
        return True

    def send(self, chunk: bytes, ends: bool = False) -> None:
        if self.extra is None:
            self.extra = []
        self.extra.append(chunk)
        self.ended = self.ended or ends
        self.wake()

    def take(self) -> bytes:
        chunks = [self.standing] if self.standing else []
        chunks.extend(self.extra or ())
        self.standing, self.extra, self.pending = None, None, False
        return b"".join(chunks)


def _eta_id(eta_range: list[int] | None) -> str:
    return "-" if eta_range is None else f"{eta_range[0]}-{eta_range[1]}"


def tick_rule(tick: dict) -> Rule | None:
    """The wait estimate for every place in line, from an admitting tick's pace (None without)."""
    pace = tick.get("pace")
    return pace_of(**pace, now_ms=tick["at_ms"]).rule() if pace else None


class RoomStreams:
    """This process's open streams for one room, and the last tick heard for it."""

    def __init__(self) -> None:
        self.clients: dict[StreamClient, None] = {}  # insertion-ordered set
        self.tick: dict | None = None
        self.rule: Rule | None = None  # the last admitting tick's wait estimate
        self.rotation = 0  # where the next correction round starts


class StreamHub:
    def __init__(self, room: WaitingRoom, passes: QueuePasses, holder: str, settings) -> None:
        self.room = room
        self.passes = passes
        self.holder = holder  # this process, as named in the room's stream and lease keys
        self.heartbeat_s = settings.stream_heartbeat_s
        self.correction_s = settings.stream_correction_s
        self.correction_batch = settings.stream_correction_batch
        self.ticket_secret = settings.jwt_secret
        self.ticket_ttl_s = settings.queue_ticket_ttl_s
        # Each open stream holds memory here: a user gets a few (tabs, events), not thousands.
        self.streams_per_user = settings.streams_per_user
        self.open_by_user: Counter[str] = Counter()
        self.rooms: dict[str, RoomStreams] = {}
        # Fan-out: from a tick's arrival to the write of the last client it changed (ms).
        self.fanouts_ms: deque[float] = deque(maxlen=1000)
        self.closing = False  # the gateway is stopping: streams opening now end at once

    @property
    def connected(self) -> int:
        return sum(len(r.clients) for r in self.rooms.values())

    def add(self, event_id: str, client: StreamClient) -> None:
        """Hold `client`'s stream; 429 when its user holds `streams_per_user` here already."""
        if self.open_by_user[client.user_id] >= self.streams_per_user:
            raise errors.RateLimited(
                f"at most {self.streams_per_user} live-position streams open at once; close one",
                headers={"Retry-After": str(RETRY_MS // 1000)},
            )
        self.open_by_user[client.user_id] += 1
        if self.closing:
            client.ended = True
            client.wake()
        self.rooms.setdefault(event_id, RoomStreams()).clients[client] = None
        gateway_metrics.SSE_CONNECTIONS.labels(event_id).inc()

    def remove(self, event_id: str, client: StreamClient) -> None:
        room = self.rooms.get(event_id)
        if room is not None and client in room.clients:
            gateway_metrics.SSE_CONNECTIONS.labels(event_id).dec()
            room.clients.pop(client, None)
            self.open_by_user[client.user_id] -= 1
            if not self.open_by_user[client.user_id]:
                del self.open_by_user[client.user_id]
            if not room.clients:
                del self.rooms[event_id]

    def user_left(self, event_id: str, user_id: str) -> None:
        """The user left the line: their streams of the room here are told so, and end."""
        room = self.rooms.get(event_id)
        for client in [c for c in room.clients if c.user_id == user_id] if room else ():
            client.send_standing(event_id, self._payload(event_id, "not_joined", None, 0, 0, None))

    def place(self, event_id: str, client: StreamClient, standing: Standing) -> None:
        """The exact standing read at connect (or by a correction): learn the client's offset."""
        client.ticket = standing.ticket
        if (
            standing.state in ("waiting", "paused")
            and standing.ticket is not None
            and standing.ahead is not None
        ):
            client.offset = standing.ticket - standing.head - 1 - standing.ahead
        client.in_doubt = False
        if standing.state == "admitted" and standing.admitted_at_ms is not None:
            self._admit(event_id, client, standing.admitted_at_ms, standing.pass_ttl_ms or 0)
            return
        client.send_standing(
            event_id,
            self._payload(
                event_id,
                standing.state,
                standing.ahead,
                standing.waiting,
                standing.admitted_last_minute,
                standing.pace.rule(),
            ),
        )

    def _payload(
        self, event_id: str, state: str, ahead: int | None, waiting: int, recent: int, rule: Rule | None
    ) -> dict:
        eta = rule.eta(ahead) if rule is not None and ahead is not None else None
        return {
            "event_id": event_id,
            "state": state,
            "position": None if ahead is None else ahead + 1,
            "ahead": ahead,
            "waiting": waiting,
            **eta_fields(state, eta),
            "admission_rate_per_min": recent,
        }

    def _admit(self, event_id: str, client: StreamClient, admitted_at_ms: int, pass_ttl_ms: int) -> None:
        issued = self.passes.issue(event_id, client.user_id, admitted_at_ms, pass_ttl_ms // 1000)
        body = {
            "event_id": event_id,
            "state": "admitted",
            "pass": issued.token,
            "pass_expires_at": iso_ms(issued.expires_at_ms),
        }
        client.send(sse("admitted", f"admitted.{issued.pass_id}", orjson.dumps(body)), ends=True)

    def on_tick(self, message: dict) -> None:
        """Every client of the room gets its place derived from the tick (no Redis call)."""
        event_id = message["event_id"]
        room = self.rooms.get(event_id)
        if room is None:
            return
        fanout = Fanout(time.perf_counter())
        room.tick = message
        if message["state"] == "admitting":
            room.rule = tick_rule(message)
        admitted = {user: ticket for user, ticket in message["admitted"]}
        state = ROOM_STATE.get(message["state"], message["state"])
        head, waiting, recent = message["head"], message["waiting"], message["recent"]
        in_line = state in ("waiting", "paused", "closed")
        # What every client of the room is told alike, encoded once; each adds its own place.
        alike = {"event_id": event_id, "state": state, "waiting": waiting, "admission_rate_per_min": recent}
        common = orjson.dumps(alike)[:-1]
        rule = room.rule if state == "waiting" else None
        if rule is None:  # no wait to say, and why (paused, closed), alike for all
            common += b',"eta_seconds":null,"eta_range_seconds":null,"eta_status":%s' % orjson.dumps(
                eta_fields(state, None)["eta_status"]
            )
        for client in room.clients:
            if client.user_id in admitted:
                self._admit(event_id, client, message["at_ms"], message["pass_ttl_ms"])
                fanout.follow(client)
                continue
            if not in_line:
                changed = client.send_standing(
                    event_id, self._payload(event_id, state, None, waiting, recent, None)
                )
            elif client.ticket is None or client.ticket <= head:
                # Drawn a ticket at opening, or gone from the line in a tick this process
                # missed: the next correction round reads this one first.
                client.in_doubt = True
                continue
            else:
                ahead = max(0, client.ticket - head - 1 - client.offset)
                if rule is None:
                    changed = client.send_encoded(
                        f"{state}.{ahead}.{waiting}.-",
                        common + b',"position":%d,"ahead":%d}' % (ahead + 1, ahead),
                    )
                else:
                    eta = rule.eta(ahead)
                    changed = client.send_encoded(
                        f"{state}.{ahead}.{waiting}.{eta.low_s}-{eta.high_s}",
                        common + b',"position":%d,"ahead":%d,"eta_seconds":%d,"eta_range_seconds":[%d,%d],'
                        b'"eta_status":"estimate"}' % (ahead + 1, ahead, eta.seconds, eta.low_s, eta.high_s),
                    )
            if changed:
                fanout.follow(client)
        fanout.sealed = True

    def lease_until_ms(self, now_ms: int) -> int:
        # Survives two missed renewals: a loop busy with a big fan-out must not cost its
        # streaming users their place.
        return now_ms + int(self.heartbeat_s * 3000)

    async def heartbeat(self) -> None:
        """The presence lease first (the one write that keeps streaming users in line), then a
        heartbeat event to every client."""
        self.log_fanouts()
        if not self.rooms:
            return
        await self.room.renew_leases(list(self.rooms), self.holder, self.lease_until_ms(now_ms()))
        now = time.time()
        for event_id, room in self.rooms.items():
            for client in room.clients:
                client.send(HEARTBEAT)
                if client.renew_ticket_at <= now:
                    self.send_ticket(event_id, client, now)

    def held_ticket(self, client: StreamClient, expires_at: float) -> None:
        """The client opened with a ticket expiring then: renew it once it is half spent."""
        client.renew_ticket_at = expires_at - self.ticket_ttl_s / 2

    def send_ticket(self, event_id: str, client: StreamClient, now: float) -> None:
        ticket = issue_queue_ticket(self.ticket_secret, client.user_id, event_id, self.ticket_ttl_s, now)
        client.send(b"event: ticket\ndata: %s\n\n" % orjson.dumps({"queue_ticket": ticket}))
        client.renew_ticket_at = now + self.ticket_ttl_s / 2

    def log_fanouts(self) -> None:
        if not self.fanouts_ms:
            return
        spans = sorted(self.fanouts_ms)
        self.fanouts_ms.clear()
        log.info(
            "%d streams open; tick fan-out over %d ticks: median %.1f ms, max %.1f ms",
            self.connected,
            len(spans),
            spans[len(spans) // 2],
            spans[-1],
        )

    async def correct(self) -> None:
        """Exact places for at most `correction_batch` clients per room: those in doubt first,
        then the rest in rotation. One round trip per room, plus a status read for anyone no
        longer waiting (admitted in a tick this process missed, or the room reopened)."""
        for event_id, room in list(self.rooms.items()):
            clients = list(room.clients)
            doubtful = [c for c in clients if c.in_doubt]
            start = room.rotation % len(clients)
            # Not yet drawn a ticket (pre-queue): nothing to correct until the opening tick.
            rotating = [
                c for c in clients[start:] + clients[:start] if not c.in_doubt and c.ticket is not None
            ]
            chosen = (doubtful + rotating)[: self.correction_batch]
            if not chosen:
                continue
            room.rotation = start + len(chosen)
            head, places = await self.room.exact_ranks(event_id, [c.user_id for c in chosen])
            tick = room.tick or {}
            gone = []
            for client, (rank, ticket) in zip(chosen, places, strict=True):
                if rank is None:
                    gone.append(client)
                    continue
                client.ticket, client.offset, client.in_doubt = (
                    int(ticket),
                    int(ticket) - head - 1 - rank,
                    False,
                )
                state = ROOM_STATE.get(tick.get("state", "admitting"), tick.get("state"))
                # Before this process has heard a tick it knows no line length: sending one
                # would show "0 waiting" until the next tick; the place is kept for that tick.
                if room.tick is not None and state in ("waiting", "paused", "closed"):
                    payload = self._payload(
                        event_id, state, rank, tick.get("waiting", 0), tick.get("recent", 0), room.rule
                    )
                    client.send_standing(event_id, payload)
            now = now_ms()
            for client in gone:
                self.place(event_id, client, await self.room.enter(event_id, client.user_id, now, "status"))

    def close_all(self) -> None:
        self.closing = True
        for room in self.rooms.values():
            for client in room.clients:
                client.ended = True
                client.wake()
