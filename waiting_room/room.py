"""The waiting room in the sale Redis: join, standing, admission ticks, configuration, revocation.

Every change is one of the lua/queue_*.lua scripts; this module names their keys and reads
their answers. Times are milliseconds passed in by the caller (tests move a clock of their own).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import orjson
from redis.exceptions import WatchError

from lua import SaleScripts, execute_scripted, keys, queue_script
from waiting_room.config import RoomConfig
from waiting_room.eta import Eta, Pace, estimate
from waiting_room.passes import pass_id
from waiting_room.pow import NO_PROOF, Proof

JOIN_PARTS = ("config", "waiting", "prequeue", "seq", "admitted", "passes", "presence", "admit_log", "bucket")
STREAM_PARTS = ("streams", "presence", "waiting", "prequeue", "leases")
LEAVE_PARTS = ("waiting", "prequeue", "presence", "streams", "joined", "notify")
NOTIFY_PARTS = ("waiting", "prequeue", "notify")
# New places per address are counted over a window that ends this long after the room's last
# (lua/queue_join.lua's EXPIRE).
JOIN_PATTERN_WINDOW_S = 3600
# lua/queue_admit.lua's KEYS[11..18]; JOIN_PARTS and the holds index come first, the zones last.
ADMIT_PARTS = ("hits", "shuffle", "streams", "leases", "joined", "revoked", "called", "notify")


@dataclass(frozen=True)
class Standing:
    """Where one user stands: state (open, closed, sold_out, prequeue, waiting, paused, admitted,
    not_joined), people ahead, their ticket, when admitted, and the room's size and pace; head
    is the room's last ticket admitted or removed when this was read."""

    state: str
    ahead: int | None
    ticket: int | None
    admitted_at_ms: int | None
    waiting: int
    admitted_last_minute: int
    pass_ttl_ms: int | None = None
    head: int = 0
    opens_at_ms: int = 0
    pace: Pace = Pace(rate_per_min=0)
    pow_bits: int = 0  # the proof of work the room asks of a new place (0: none)
    closed_reason: str = (
        ""  # why the system closed the room (tenant_suspended, event_cancelled), "" otherwise
    )

    @property
    def position(self) -> int | None:
        return None if self.ahead is None else self.ahead + 1

    def eta(self) -> Eta | None:
        """The wait, while in a line that moves (paused, prequeue and the rest: None)."""
        if self.state != "waiting" or self.ahead is None:
            return None
        return estimate(self.ahead, self.pace)


def _opt(value: int) -> int | None:
    return None if value < 0 else int(value)


def pace_of(rate_per_min, head_per_s, admits_per_s, since, limited, now_ms: int) -> Pace:
    """A room's pace as lua/queue_admit.lua keeps it (the names of its tick's `pace` fields),
    seen at `now_ms`."""
    return Pace(
        rate_per_min=int(rate_per_min),
        head_per_s=float(head_per_s),
        admits_per_s=float(admits_per_s),
        measured_s=max(0.0, (now_ms - int(since)) / 1000) if int(since) else 0.0,
        limited=bool(int(limited)),
    )


def _standing(out: list, now_ms: int) -> Standing:
    """lua/queue_join.lua's answer."""
    state, ahead, ticket, admitted_at, waiting, recent, pass_ttl, head, opens_at, *pace, pow_bits, reason = (
        out
    )
    return Standing(
        state.decode() if isinstance(state, bytes) else state,
        _opt(ahead),
        _opt(ticket),
        _opt(admitted_at),
        int(waiting),
        int(recent),
        _opt(pass_ttl),
        int(head),
        int(opens_at),
        pace_of(*pace, now_ms),
        int(pow_bits),
        reason.decode() if isinstance(reason, bytes) else reason,
    )


def _tuples(flat: list | dict, size: int) -> list[tuple]:
    """A script's flat list [a, b, a, b, ...] as tuples (cjson encodes an empty one as {})."""
    flat = flat if isinstance(flat, list) else []
    return [tuple(flat[i : i + size]) for i in range(0, len(flat), size)]


class WaitingRoom:
    def __init__(self, redis, scripts: SaleScripts) -> None:
        self.redis = redis
        self.scripts = scripts

    async def enter(
        self, event_id: str, user_id: str, now_ms: int, verb: str = "join", proof: Proof = NO_PROOF
    ) -> Standing:
        """verb "join" joins (idempotently; `proof`: the proof of work sent, when the room asks
        one); "status" only reports and refreshes presence."""
        (standing,) = await self.enter_many([(event_id, user_id, now_ms, verb, proof, "")])
        return standing

    async def enter_many(self, calls: list[tuple[str, str, int, str, Proof, str]]) -> list[Standing]:
        """Several `enter` calls (event id, user id, now ms, verb, proof, the joiner's address or
        "") in one round trip; a room joined is woken for the next admission tick
        (workers/admitter.py: a quiet room is otherwise ticked only every few seconds), and each
        new place counted against its address (`join_patterns`)."""
        joined = {event_id for event_id, _, _, verb, _, _ in calls if verb == "join"}

        def fill(pipe) -> None:
            for event_id, user_id, now_ms, verb, proof, address in calls:
                room_keys = [*(keys.room(event_id, p) for p in JOIN_PARTS), keys.room(event_id, "joined")]
                args = [user_id, now_ms, verb]
                if verb == "join":  # a new place counts against its address (join_patterns)
                    room_keys.append(keys.room(event_id, "join_addresses"))
                    args.append(address)
                    if proof.bits:  # the proof's key and arguments only when there is one: a join
                        # without proof is most joins, and each argument costs the gateway to send
                        room_keys.append(keys.room(event_id, "pow_used"))
                        args += [proof.bits, proof.challenge_id, proof.expires_ms]
                queue_script(pipe, self.scripts.queue_join, room_keys, args)
            if joined:
                pipe.sadd(keys.ROOMS_WAKE, *joined)

        outputs = await execute_scripted(self.redis, fill, self.scripts)
        return [_standing(out, call[2]) for out, call in zip(outputs[: len(calls)], calls, strict=True)]

    async def admit(self, event_id: str, now_ms: int, max_scan: int = 2000) -> dict[str, Any]:
        """One admission tick for the event (see lua/queue_admit.lua for the answer's fields)."""
        return (await self.admit_all([event_id], now_ms, max_scan))[event_id]

    async def admit_all(self, event_ids: list[str], now_ms: int, max_scan: int = 2000) -> dict[str, dict]:
        """One admission tick for each event: every room's zones read in one round trip, every
        room's script run in one more, however many rooms there are."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.smembers(keys.zone_index(event_id))
            zone_sets = await pipe.execute()

        def fill(pipe) -> None:
            for event_id, zone_keys in zip(event_ids, zone_sets, strict=True):
                room_keys = [
                    *(keys.room(event_id, p) for p in JOIN_PARTS),
                    keys.expiry_index(event_id),
                    *(keys.room(event_id, p) for p in ADMIT_PARTS),
                    *(k.decode() for k in zone_keys),
                ]
                queue_script(pipe, self.scripts.queue_admit, room_keys, [now_ms, max_scan])

        ticks = {}
        answers = await execute_scripted(self.redis, fill, self.scripts)
        for event_id, raw in zip(event_ids, answers, strict=True):
            tick = orjson.loads(raw)
            tick["admitted"] = [(user, int(ticket)) for user, ticket in _tuples(tick["admitted"], 2)]
            # Called while away (user, ticket, subscription) and claim windows run out (user,
            # subscription): the admitter tells them (workers/admitter.py).
            tick["called"] = _tuples(tick["called"], 3)
            tick["missed"] = _tuples(tick["missed"], 2)
            ticks[event_id] = tick
        return ticks

    async def leave(self, event_id: str, user_id: str) -> bool:
        """The user leaves the line (or the pre-queue); True if they were in it."""
        room_keys = [keys.room(event_id, p) for p in LEAVE_PARTS]
        return await self.scripts.queue_leave(keys=room_keys, args=[user_id]) == 1

    async def subscribe(self, event_id: str, user_id: str, subscription: bytes) -> bool:
        """Keep the user's notification subscription (one per person per room, replacing the
        last); False if they are not in line (nothing kept)."""
        room_keys = [keys.room(event_id, p) for p in NOTIFY_PARTS]
        return await self.scripts.queue_notify(keys=room_keys, args=[user_id, subscription]) == 1

    async def unsubscribe(self, event_id: str, user_id: str) -> bool:
        """Drop the user's notification subscription; False if there was none."""
        room_keys = [keys.room(event_id, p) for p in NOTIFY_PARTS]
        return await self.scripts.queue_notify(keys=room_keys, args=[user_id, ""]) == 1

    async def forget_subscription(self, event_id: str, user_id: str, subscription: str) -> None:
        """The push service says this subscription is gone (404/410): drop it, if still the user's."""
        notify = keys.room(event_id, "notify")
        async with self.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(notify)
            if (await pipe.hget(notify, user_id) or b"").decode() == subscription:
                pipe.multi()
                pipe.hdel(notify, user_id)
                with contextlib.suppress(WatchError):  # changed meanwhile: a new one, kept
                    await pipe.execute()

    async def stream(
        self, event_id: str, user_id: str, holder: str, now_ms: int, op: str, lease_until_ms: int = 0
    ) -> bool:
        """A live-position stream opens ("open") or closes ("close") on process `holder`;
        True if the user is in line (see lua/queue_stream.lua)."""
        room_keys = [keys.room(event_id, p) for p in STREAM_PARTS]
        args = [op, user_id, holder, now_ms, lease_until_ms]
        return await self.scripts.queue_stream(keys=room_keys, args=args) == 1

    async def renew_leases(self, event_ids: list[str], holder: str, until_ms: int) -> None:
        """Process `holder`'s open streams count as presence until `until_ms`: one write per
        room, all in one round trip, however many streams the process holds."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.zadd(keys.room(event_id, "leases"), {holder: until_ms})
            await pipe.execute()

    async def exact_ranks(self, event_id: str, user_ids: list[str]) -> tuple[int, list[tuple]]:
        """The room's head and each user's (people ahead, ticket), both None if not waiting,
        read atomically in one round trip."""
        waiting = keys.room(event_id, "waiting")
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(keys.room(event_id, "bucket"), "head")
            for user_id in user_ids:
                pipe.zrank(waiting, user_id)
                pipe.zscore(waiting, user_id)
            head, *places = await pipe.execute()
        return int(head or 0), list(zip(places[::2], places[1::2], strict=True))

    async def config(self, event_id: str) -> RoomConfig:
        return RoomConfig.from_redis(await self.redis.hgetall(keys.room(event_id, "config")))

    async def configure(self, event_id: str, changes: dict[str, Any]) -> RoomConfig:
        """Apply an operator's changes (validated by RoomConfig.updated) and tell every gateway."""
        config_key = keys.room(event_id, "config")
        stored = await self.redis.hgetall(config_key)
        new = RoomConfig.from_redis(stored).updated(changes)
        # `engaged` is the one answer to "does reserve need a pass": set here for every mode but
        # auto, which the admission tick decides (and keeps until nobody is waiting).
        engaged = new.engaged_by_mode() if new.mode != "auto" else stored.get(b"engaged") == b"1"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(config_key, mapping={**new.to_redis(), "engaged": "1" if engaged else "0"})
            pipe.sadd(keys.LIVE_ROOMS, event_id)
            pipe.sadd(keys.ROOMS_WAKE, event_id)
            pipe.publish(keys.ROOM_CHANNEL, orjson.dumps({"type": "config", "event_id": event_id}))
            await pipe.execute()
        return new

    async def admission_of(self, event_id: str, user_id: str) -> str | None:
        """The user's admission record "<ticket>:<admitted at ms>:<pass ttl ms>", if any."""
        raw = await self.redis.hget(keys.room(event_id, "passes"), user_id)
        return None if raw is None else raw.decode()

    async def revoke(self, event_id: str, user_id: str, pass_id: str, expires_at_ms: int, entry: str) -> int:
        result = await self.scripts.queue_revoke(
            keys=[
                keys.room(event_id, "admitted"),
                keys.room(event_id, "passes"),
                keys.room(event_id, "revoked"),
            ],
            args=[user_id, pass_id, expires_at_ms, entry],
        )
        if result == 1:
            await self.broadcast(
                {"type": "revoke", "event_id": event_id, "pass_id": pass_id, "expires_at_ms": expires_at_ms}
            )
        return int(result)

    async def revoke_user(self, event_id: str, user_id: str, now_ms: int) -> str | None:
        """Revoke the user's live pass (an operator's call); its pass id, or None if they hold none."""
        entry = await self.admission_of(event_id, user_id)
        if entry is None:
            return None
        if entry.endswith(":called"):
            return None  # called while away and not back yet: no pass was issued
        _, admitted_at, ttl = (int(part) for part in entry.split(":"))
        expires_at_ms = admitted_at + ttl
        if expires_at_ms <= now_ms:
            return None
        jti = pass_id(event_id, user_id, admitted_at)
        revoked = await self.revoke(event_id, user_id, jti, (expires_at_ms // 1000) * 1000, entry)
        return jti if revoked == 1 else None

    async def gate_state(self, event_id: str) -> tuple[bool, dict[str, int]]:
        """What a gateway needs to gate reserve: whether the room is engaged, and the revoked
        passes (pass id -> expiry ms), in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.room(event_id, "config"), "engaged")
            pipe.hgetall(keys.room(event_id, "revoked"))
            engaged, revoked = await pipe.execute()
        return engaged == b"1", {k.decode(): int(v) for k, v in revoked.items()}

    async def stats(self, event_id: str, now_ms: int) -> dict[str, Any]:
        """The room's counts for operators; admitted is every pass issued (the admission records
        themselves are dropped a minute after they run out)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(keys.room(event_id, "waiting"))
            pipe.zcard(keys.room(event_id, "prequeue"))
            pipe.zcount(keys.room(event_id, "admitted"), f"({now_ms}", "+inf")
            pipe.hget(keys.room(event_id, "bucket"), "admitted")
            pipe.zcount(keys.room(event_id, "admit_log"), now_ms - 60_000, "+inf")
            pipe.hmget(keys.room(event_id, "config"), "engaged", "state")
            pipe.zcard(keys.expiry_index(event_id))
            pipe.smembers(keys.zone_index(event_id))
            waiting, prequeue, active, admitted, recent, (engaged, state), held, zones = await pipe.execute()
        async with self.redis.pipeline(transaction=False) as pipe:
            for zone_key in zones:
                pipe.hmget(zone_key, "available", "total")
            counts = [(int(a or 0), int(t or 0)) for a, t in await pipe.execute()]
        remaining, total = sum(a for a, _ in counts), sum(t for _, t in counts)
        return {
            "waiting": waiting,
            "prequeue": prequeue,
            "active": active,
            "admitted": int(admitted or 0),
            "admission_rate_per_min": recent,
            "engaged": engaged == b"1",
            "sold_out": state == b"sold_out",
            "held_bookings": held,
            "seats_total": total,
            "seats_remaining": remaining,
            "seats_taken": total - remaining,  # held or sold
        }

    async def join_patterns(self, event_id: str, top: int = 10, most_in_line: int = 20_000) -> dict[str, Any]:
        """What an operator looks at for bots: the addresses that took most places in line
        (within JOIN_PATTERN_WINDOW_S of the room's last new place), and who is in line (the first
        `most_in_line` of the line and the pre-queue: the caller looks up their accounts)."""
        counts = keys.room(event_id, "join_addresses")
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrevrange(counts, 0, top - 1, withscores=True)
            pipe.zcard(counts)
            pipe.zrange(keys.room(event_id, "waiting"), 0, most_in_line - 1)
            pipe.zrange(keys.room(event_id, "prequeue"), 0, most_in_line - 1)
            busiest, addresses, waiting, prequeue = await pipe.execute()
        return {
            "addresses": addresses,
            "busiest": [{"address": a.decode(), "joins": int(n)} for a, n in busiest],
            "in_line": [u.decode() for u in waiting + prequeue][:most_in_line],
        }

    async def broadcast(self, message: dict[str, Any]) -> None:
        await self.redis.publish(keys.ROOM_CHANNEL, orjson.dumps(message))
