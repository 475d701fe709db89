"""The archiver role: keeps the sale Redis bounded. It runs with `noeviction` (a hold must never
vanish), so whatever it keeps and never removes would end by refusing every write.

During a sale (`trim_once`): a hold that ended with no payment (expired, or cancelled before any
payment began: the scripts list those in each event's ended index) shrinks to a tombstone
(status, version; lua/trim_hold.lua) once PostgreSQL has its final version and at least the
redelivery window has passed since it ended, so no redelivery of the command that ended it can
still arrive. A late command finds "already ended" and never re-creates it. Holds that ever had
a payment, and every payment, stay until the event is archived: late money must find them.

After the event (`archive_once`): once its last show is long enough over, no hold is live, no
payment is pending or unknown and no refund is waiting, what PostgreSQL lacks of it is written
(the same idempotent, version-guarded writes as the persistence consumer), the event is marked
archived in the same transaction, and then its users' event sets lose it, all of its keys are
removed and it leaves the live sets. A crash halfway finds the mark and finishes; a second run
finds nothing left and does nothing.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from booking_rush.contract import messages
from booking_rush.contract.messages import now_ms
from booking_rush.services.periodic import run_every
from lua import SaleScripts, execute_scripted, keys, queue_script
from workers.due_schedule import DueSchedule
from workers.persistence import apply_events
from workers.settings import WorkerSettings

log = logging.getLogger("workers.archiver")

TRIM_BATCH = 1000
TRIM_BATCHES_PER_TICK = 10  # at most this many batches per event per tick: bounded work
MAX_TRIM_HORIZON_MS = 60_000  # every live event's ended index looked at least this often
ARCHIVE_RECHECK_MS = 600_000  # every live event's last show read again at least this often
# Removal passes over an event's keys: what appears meanwhile (a late command's refusal record,
# a room's per-second hits) is a TTL'd key; a writer that keeps going is left to its TTL.
REMOVE_ROUNDS = 3

# lua/trim_hold.lua's answers.
TRIMMED, NOT_TRIMMABLE, NOT_PERSISTED_YET = 1, 0, -1

LIVE_HOLD = frozenset({"reserved", "paying"})
PAYMENT_UNSETTLED = frozenset({"pending", "processing"})
REFUND_WAITING = frozenset({"requested", "approved"})

# Each event's last show, and whether an archive of it began (a crash halfway finishes it).
LAST_SHOWS = """
SELECT e.id::text AS id, (SELECT max(s.show_date) FROM shows s WHERE s.event_id = e.id) AS last_show,
       EXISTS (SELECT 1 FROM event_archives a WHERE a.event_id = e.id) AS archived
FROM events e
WHERE e.id = ANY($1::uuid[])
"""

MARK_ARCHIVED = """
INSERT INTO event_archives (event_id, bookings, payments, written) VALUES ($1, $2, $3, $4)
ON CONFLICT (event_id) DO NOTHING
"""


@dataclass
class Archived:
    """What one archive pass did to one event (or why it waited)."""

    event_id: str
    waiting_for: str | None = None  # why the event was left for a later pass
    written: int = 0  # records PostgreSQL lacked
    removed_keys: int = 0
    users: int = 0


@dataclass
class _EventRecords:
    keys: list[str]
    holds: dict[str, dict[str, Any]] = field(default_factory=dict)  # booking id -> record
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)  # payment id -> record


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _s(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def _versions(conn: asyncpg.Connection, table: str, event_id: str) -> dict[str, int]:
    """public id -> version of an event's bookings or payments (`table`: one of the two)."""
    rows = await conn.fetch(f"SELECT public_id, version FROM {table} WHERE event_id = $1", event_id)
    return {r["public_id"]: r["version"] for r in rows}


class Archiver:
    def __init__(self, redis, scripts: SaleScripts, pool: asyncpg.Pool, settings: WorkerSettings) -> None:
        self.redis = redis
        self.scripts = scripts
        self.pool = pool
        self.settings = settings
        # A hold ends now at the earliest, so it is trimmable no sooner than a window from now.
        self.trim_schedule = DueSchedule(min(settings.redelivery_window_s * 1000, MAX_TRIM_HORIZON_MS))
        self.over_schedule = DueSchedule(ARCHIVE_RECHECK_MS)

    async def live_events(self) -> list[str]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.smembers(keys.LIVE_EVENTS)
            pipe.smembers(keys.LIVE_ROOMS)
            sale, rooms = await pipe.execute()
        return sorted({_s(e) for e in sale | rooms})

    # --- during the sale ----------------------------------------------------------------------

    async def trim_once(self, as_of_ms: int | None = None, event_ids: list[str] | None = None) -> int:
        """Trim every ended hold that may be trimmed as of `as_of_ms`; return how many were.
        With `event_ids`, look at each of them now; without, at the live events whose ended
        index may have something trimmable (workers/due_schedule.py)."""
        as_of = now_ms() if as_of_ms is None else as_of_ms
        window_ms = self.settings.redelivery_window_s * 1000
        if event_ids is None:
            if self.trim_schedule.wants_events(as_of):
                self.trim_schedule.events(set(await self.live_events()), as_of)
            event_ids = self.trim_schedule.due(as_of)
        if not event_ids:
            return 0
        ended_before = as_of - window_ms
        async with self.redis.pipeline(transaction=False) as pipe:
            for event_id in event_ids:
                pipe.zrange(keys.ended_index(event_id), 0, 0, withscores=True)
            firsts = await pipe.execute()
        trimmed = 0
        for event_id, first in zip(event_ids, firsts, strict=True):
            if first and first[0][1] <= ended_before:
                for _ in range(TRIM_BATCHES_PER_TICK):
                    done, full = await self._trim_batch(event_id, ended_before)
                    trimmed += done
                    if not full:
                        break
                self.trim_schedule.looked(event_id, as_of, as_of)  # next tick: what is left
            else:  # an entry is trimmable the redelivery window after it ended
                self.trim_schedule.looked(event_id, as_of, int(first[0][1]) + window_ms if first else None)
        return trimmed

    async def _trim_batch(self, event_id: str, ended_before: int) -> tuple[int, bool]:
        """One batch of an event's ended holds: (how many trimmed, whether the batch was full)."""
        ended = keys.ended_index(event_id)
        due = [_s(b) for b in await self.redis.zrangebyscore(ended, "-inf", ended_before, 0, TRIM_BATCH)]
        if not due:
            return 0, False
        async with self.redis.pipeline(transaction=False) as pipe:
            for booking_id in due:
                pipe.hget(keys.hold(event_id, booking_id), "user_id")
            owners = [_s(u) or "" for u in await pipe.execute()]
        rows = await self.pool.fetch(
            "SELECT public_id, version FROM bookings WHERE public_id = ANY($1::text[])", due
        )
        persisted = {r["public_id"]: r["version"] for r in rows}
        script = self.scripts.trim_hold

        def fill(pipe) -> None:
            for booking_id, owner in zip(due, owners, strict=True):
                queue_script(
                    pipe,
                    script,
                    keys.trim_keys(event_id, booking_id, owner),
                    [booking_id, owner, persisted.get(booking_id, -1)],
                )

        answers = await execute_scripted(self.redis, fill, self.scripts)
        # Not in PostgreSQL yet: the persistence consumer gets there; look again next tick (a
        # batch full of those must not hide the rest of the index behind it).
        waiting = answers.count(NOT_PERSISTED_YET)
        if waiting:
            await self.redis.zadd(
                ended,
                {b: ended_before + 1 for b, a in zip(due, answers, strict=True) if a == NOT_PERSISTED_YET},
                xx=True,
            )
        return answers.count(TRIMMED), len(due) == TRIM_BATCH

    # --- after the event ----------------------------------------------------------------------

    async def archive_once(
        self, as_of_ms: int | None = None, event_ids: list[str] | None = None
    ) -> list[Archived]:
        """Archive every event (of `event_ids`, default the live ones whose end may have come)
        that is over as of `as_of_ms` and has nothing left to settle; what each pass did.

        Without `event_ids`, PostgreSQL is asked about an event when it may be over (its last
        show plus the wait, as read the last time), or after ARCHIVE_RECHECK_MS at the latest
        (shows can move): not about every live event each tick."""
        as_of = now_ms() if as_of_ms is None else as_of_ms
        scheduled = event_ids is None
        if scheduled:
            if self.over_schedule.wants_events(as_of):
                self.over_schedule.events(set(await self.live_events()), as_of)
            event_ids = self.over_schedule.due(as_of)
        candidates = messages.uuid_ids(event_ids)
        if not candidates:
            return []
        after_ms = self.settings.archive_after_last_show_s * 1000
        rows = {r["id"]: r for r in await self.pool.fetch(LAST_SHOWS, candidates)}
        done = []
        for event_id in event_ids:
            row = rows.get(event_id)
            over_at = None if row is None or row["last_show"] is None else _ms(row["last_show"]) + after_ms
            if over_at is not None and over_at < as_of:
                archived = await self.archive_event(event_id, already_marked=row["archived"])
                done.append(archived)
                over_at = as_of  # not settled yet: asked again next tick; archived: it leaves
            if scheduled:
                self.over_schedule.looked(event_id, as_of, over_at)
        return done

    async def archive_event(self, event_id: str, *, already_marked: bool = False) -> Archived:
        done = Archived(event_id)
        records = await self._read(event_id)
        if not already_marked:
            done.waiting_for = self._unsettled(records)
            settling = await self.redis.hget(keys.cancellation(event_id), "status")
            if settling is not None and settling != b"done":  # its holds and payments are needed
                done.waiting_for = ", ".join(
                    filter(None, [done.waiting_for, "its cancellation being settled"])
                )
            if done.waiting_for:
                log.info("event %s is over but not archived yet: %s", event_id, done.waiting_for)
                return done
            done.written = await self._write_lacking_and_mark(event_id, records)
        done.users, done.removed_keys = await self._remove(event_id, records)
        log.info(
            "archived event %s: %d records written to PostgreSQL, %d keys removed, %d users' sets",
            event_id,
            done.written,
            done.removed_keys,
            done.users,
        )
        return done

    async def _keys_of(self, event_id: str) -> list[str]:
        return [_s(k) async for k in self.redis.scan_iter(match=f"{keys.tag(event_id)}:*", count=1000)]

    async def _read(self, event_id: str) -> _EventRecords:
        found = await self._keys_of(event_id)
        hold_prefix, payment_prefix = keys.hold(event_id, ""), keys.payment(event_id, "")
        hold_keys = [k for k in found if k.startswith(hold_prefix)]
        payment_keys = [k for k in found if k.startswith(payment_prefix)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in hold_keys + payment_keys:
                pipe.hgetall(key)
            hashes = await pipe.execute()
        records = _EventRecords(found)
        for key, raw in zip(hold_keys + payment_keys, hashes, strict=True):
            if not raw:
                continue
            if key.startswith(hold_prefix):
                records.holds[key[len(hold_prefix) :]] = messages.redis_record(raw)
            else:
                records.payments[key[len(payment_prefix) :]] = messages.redis_record(raw)
        return records

    @staticmethod
    def _unsettled(records: _EventRecords) -> str | None:
        """Why the event cannot be archived yet, or None."""
        live = sum(h.get("status") in LIVE_HOLD for h in records.holds.values())
        unsettled = sum(p.get("status") in PAYMENT_UNSETTLED for p in records.payments.values())
        refunds = sum(
            p.get("refund_status") in REFUND_WAITING or p.get("topup_status") == "approved"
            for p in records.payments.values()
        )
        reasons = [
            f"{n} {what}"
            for n, what in (
                (live, "live holds"),
                (unsettled, "payments pending or unknown"),
                (refunds, "refunds waiting"),
            )
            if n
        ]
        return ", ".join(reasons) or None

    async def _write_lacking_and_mark(self, event_id: str, records: _EventRecords) -> int:
        """Every record PostgreSQL lacks (or has an older version of), and the archive mark, in
        one transaction; returns how many records were written."""
        async with self.pool.acquire() as conn, conn.transaction():
            have_bookings = await _versions(conn, "bookings", event_id)
            have_payments = await _versions(conn, "payments", event_id)
            lacking = [
                messages.booking_event(event_id, booking_id, hold)
                for booking_id, hold in records.holds.items()
                if "user_id" in hold and hold.get("version", 1) > have_bookings.get(booking_id, 0)
            ]
            for payment_id, payment in records.payments.items():
                if payment.get("version", 1) > have_payments.get(payment_id, 0):
                    # A hold that had a payment is never trimmed: it is here, with its show.
                    booking = records.holds[payment["booking_id"]]
                    lacking.append(messages.payment_event(event_id, payment, booking))
            if lacking:
                await apply_events(conn, lacking)
            await conn.execute(
                MARK_ARCHIVED, event_id, len(records.holds), len(records.payments), len(lacking)
            )
        return len(lacking)

    async def _remove(self, event_id: str, records: _EventRecords) -> tuple[int, int]:
        """Users' event sets first (their owners are read from keys about to go), then every key
        of the event, then the live sets: each step idempotent, so a crash anywhere resumes."""
        booking_prefix, count_prefix = keys.user_bookings(event_id, ""), keys.user_count(event_id, "")
        # Whoever booked: PostgreSQL has every booking by now (a tombstone's owner is only there).
        rows = await self.pool.fetch(
            "SELECT DISTINCT user_id::text FROM bookings WHERE event_id = $1", event_id
        )
        users = {r["user_id"] for r in rows}
        users |= {h["user_id"] for h in records.holds.values() if h.get("user_id")}
        users |= {k[len(booking_prefix) :] for k in records.keys if k.startswith(booking_prefix)}
        users |= {k[len(count_prefix) :] for k in records.keys if k.startswith(count_prefix)}
        async with self.redis.pipeline(transaction=False) as pipe:
            for user_id in users:
                pipe.srem(keys.user_events(user_id), event_id)
            await pipe.execute()
        removed = 0
        found = records.keys
        for _ in range(REMOVE_ROUNDS):
            for start in range(0, len(found), 500):
                removed += await self.redis.unlink(*found[start : start + 500])
            # Anything written meanwhile (a late command's refusal record, a room's hit count).
            found = await self._keys_of(event_id)
            if not found:
                break
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.srem(keys.LIVE_EVENTS, event_id)
            pipe.srem(keys.LIVE_ROOMS, event_id)
            await pipe.execute()
        return len(users), removed

    async def run(self, stop: asyncio.Event) -> None:
        s = self.settings
        await run_every(stop, s.archive_interval_s, s.redis_timeout_s * 6, self._tick, "archive tick")

    async def _tick(self) -> None:
        trimmed = await self.trim_once()
        if trimmed:
            log.info("trimmed %d ended holds to tombstones", trimmed)
        await self.archive_once()
