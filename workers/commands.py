"""The command consumer: reservation and expiry commands in, Lua per command, events out.

Per fetched batch: every command's script runs in one Redis pipeline; the resulting events are
produced to `booking.events` and acknowledged (acks=all, idempotent producer); then each gateway
gets one pub/sub message for the batch, each result is stored for the 202 poll, and only then
are the offsets committed. A crash anywhere before the commit redelivers the batch, and the
idempotency records make the replay answer exactly as the first run did.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections import defaultdict
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from booking_rush.contract import jobs, messages
from booking_rush.services.clients import group_consumer
from booking_rush.services.job_queue import JobQueue
from booking_rush.telemetry import metrics, tracing, worker_metrics
from lua import SaleScripts, execute_scripted, keys, queue_script
from workers.inventory import load_call
from workers.settings import WorkerSettings

log = logging.getLogger("workers.commands")


# Shaped like reserve_seats' own answer for a command past its deadline.
LATE_COMMAND_OUTPUT = [messages.encode({"status": "expired"}), 0]


def now_ms() -> int:
    return int(time.time() * 1000)


def _accepted_too_late(cmd: dict[str, Any]) -> bool:
    appended, accept_by = cmd.get("appended_ms"), cmd.get("accept_by_ms")
    return appended is not None and accept_by is not None and appended > accept_by


class CommandProcessor:
    """Applies one batch of commands: Lua, then events, then replies (no offsets here)."""

    def __init__(
        self,
        redis,
        scripts: SaleScripts,
        producer: AIOKafkaProducer,
        settings: WorkerSettings,
        job_queue: JobQueue | None = None,
    ) -> None:
        self.redis = redis
        self.scripts = scripts
        self.producer = producer
        self.settings = settings
        self.job_queue = job_queue or JobQueue(
            settings.endpoints.aux_redis_url, settings.endpoints.topic_prefix
        )

    async def apply(self, commands: list[dict[str, Any]]) -> list[Any]:
        """Stage 1: every command's script, in one pipeline. Safe to repeat (idempotent)."""
        if not commands:
            return []
        started = time.time_ns()
        outputs = await self._run_scripts(commands)
        for cmd in commands:
            if "trace" in cmd:  # a traced request: its spans are written once it is answered
                cmd["_lua_ns"] = (started, time.time_ns())
        if self.settings.crash_after_lua:
            os.kill(os.getpid(), signal.SIGKILL)
        return outputs

    async def publish(self, commands: list[dict[str, Any]], outputs: list[Any]) -> None:
        """Stage 2: the events, acknowledged by Kafka; only then the answers to the gateways."""
        events, replies, follow_ups = self._outcomes(commands, outputs)
        produced = time.time_ns()
        await self._produce(events)
        answered = time.time_ns()
        await self._answer(
            replies,
            [(e["user_id"], e["event_id"]) for e in events if e["type"] == messages.BOOKING_CREATED],
            [e["event_id"] for e in events if e["type"] == messages.INVENTORY_LOADED],
        )
        trace_commands(commands, produced, answered, time.time_ns())
        # After the events are acknowledged and before the offsets are committed: a crash in
        # between sends them again, and every job is idempotent.
        for actor_name, *args in follow_ups:
            await self.job_queue.send(actor_name, *args)

    async def _run_scripts(self, commands: list[dict[str, Any]]) -> list[Any]:
        now = now_ms()
        # The gateway told these clients 503 "nothing accepted": keep that true.
        late = [cmd["type"] == messages.RESERVE and _accepted_too_late(cmd) for cmd in commands]
        queue = {
            messages.RESERVE: self._queue_reserve,
            messages.EXPIRE: self._queue_expire,
            messages.ADJUST_ZONE: self._queue_adjust,
            messages.CANCEL: self._queue_cancel,
            messages.BEGIN_PAYMENT: self._queue_begin_payment,
            messages.SETTLE_PAYMENT: self._queue_settle_payment,
            messages.REFUND: self._queue_refund,
            messages.LOAD_INVENTORY: self._queue_load_inventory,
        }

        def fill(pipe) -> None:
            for cmd, is_late in zip(commands, late, strict=True):
                if not is_late:
                    queue[cmd["type"]](pipe, cmd, now)

        async with asyncio.timeout(self.settings.redis_timeout_s):
            with metrics.timed(metrics.REDIS_DURATION, service="worker", operation="command_batch"):
                outputs = iter(await execute_scripted(self.redis, fill, self.scripts))
        return [LATE_COMMAND_OUTPUT if is_late else next(outputs) for is_late in late]

    def _queue_reserve(self, pipe, cmd: dict[str, Any], now: int) -> None:
        s, ev = self.settings, cmd["event_id"]
        scope = messages.idempotency_scope(cmd.get("idempotency_key"), cmd["request_id"])
        queue_script(
            pipe,
            self.scripts.reserve_seats,
            keys.reserve_keys(ev, cmd["user_id"], scope, cmd["show_id"], cmd["zone_id"], cmd["booking_id"]),
            [
                cmd["body_hash"],
                now,
                cmd["deadline_ms"],
                cmd["quantity"],
                cmd["booking_id"],
                cmd["user_id"],
                cmd["show_id"],
                cmd["zone_id"],
                s.hold_ms,
                s.idempotency_ttl_s,
                cmd["request_id"],
                s.default_max_per_user,
                scope,
            ],
        )

    def _queue_expire(self, pipe, cmd: dict[str, Any], now: int) -> None:
        ev = cmd["event_id"]
        queue_script(
            pipe,
            self.scripts.expire_hold,
            keys.hold_keys(ev, cmd["booking_id"], cmd["user_id"], cmd["show_id"], cmd["zone_id"]),
            # The sweeper judged the hold due as of its clock; the script re-checks.
            [cmd["booking_id"], cmd.get("as_of_ms", now), cmd["user_id"], cmd["show_id"], cmd["zone_id"]],
        )

    def _queue_cancel(self, pipe, cmd: dict[str, Any], now: int) -> None:
        ev = cmd["event_id"]
        queue_script(
            pipe,
            self.scripts.cancel_hold,
            keys.hold_keys(ev, cmd["booking_id"], cmd["user_id"], cmd["show_id"], cmd["zone_id"]),
            [cmd["booking_id"], now, cmd["user_id"], cmd["show_id"], cmd["zone_id"]],
        )

    def _queue_begin_payment(self, pipe, cmd: dict[str, Any], now: int) -> None:
        ev = cmd["event_id"]
        queue_script(
            pipe,
            self.scripts.begin_payment,
            [keys.hold(ev, cmd["booking_id"]), keys.payment(ev, cmd["payment_id"]), keys.expiry_index(ev)],
            [
                cmd["booking_id"],
                cmd["payment_id"],
                cmd["user_id"],
                cmd["method"],
                cmd["masked"],
                now,
                self.settings.payment_hold_ms,
            ],
        )

    @staticmethod
    def _payment_keys(cmd: dict[str, Any]) -> list[str]:
        ids = ("event_id", "booking_id", "payment_id", "user_id", "show_id", "zone_id")
        return keys.payment_keys(*(cmd[i] for i in ids))

    def _queue_settle_payment(self, pipe, cmd: dict[str, Any], now: int) -> None:
        queue_script(
            pipe,
            self.scripts.settle_payment,
            self._payment_keys(cmd),
            [
                cmd["booking_id"],
                cmd["payment_id"],
                cmd["outcome"],
                now,
                cmd["provider_ref"],
                cmd["reason"],
                cmd.get("ticket_code", ""),
            ],
        )

    def _queue_refund(self, pipe, cmd: dict[str, Any], now: int) -> None:
        queue_script(
            pipe,
            self.scripts.refund_payment,
            self._payment_keys(cmd),
            [
                cmd["booking_id"],
                cmd["payment_id"],
                cmd["step"],
                now,
                cmd["user_id"],
                cmd["percent"],
                cmd["amount_cents"],
                cmd["provider_ref"],
            ],
        )

    def _queue_adjust(self, pipe, cmd: dict[str, Any], now: int) -> None:
        ev = cmd["event_id"]
        queue_script(
            pipe,
            self.scripts.adjust_zone,
            [
                keys.idempotency(ev, cmd["user_id"], messages.idempotency_scope(None, cmd["request_id"])),
                keys.zone(ev, cmd["show_id"], cmd["zone_id"]),
            ],
            [cmd["total"], self.settings.idempotency_ttl_s],
        )

    def _queue_load_inventory(self, pipe, cmd: dict[str, Any], now: int) -> None:
        queue_script(pipe, self.scripts.load_inventory, *load_call(cmd, self.settings.idempotency_ttl_s))

    @staticmethod
    def _outcomes(commands, outputs):
        """Events to produce, (reply channel, event id, reply) for the gateways, and the jobs
        that follow (actor name, *args)."""
        events: list[dict[str, Any]] = []
        replies: list[tuple[str, str, dict[str, Any]]] = []  # (reply channel, event id, reply)
        follow_ups: list[tuple] = []
        for cmd, out in zip(commands, outputs, strict=True):
            if "trace" in cmd:  # the events of a traced command carry its trace on (record headers)
                traced_from = len(events)
            if cmd["type"] == messages.EXPIRE:
                code, raw = int(out[0]), out[1]
                if code in (1, 2):  # 2: already expired; re-emit, the consumers are idempotent
                    events.append(messages.booking_expired_event(cmd, messages.decode(raw)))
                elif code == -2:
                    log.error("expire command names keys that do not match its hold: %s", cmd)
                continue
            result = messages.decode(out[0])
            if cmd["type"] == messages.RESERVE and not (len(out) > 1 and out[1] == 1):  # not a replay
                count_reservation(cmd["event_id"], result["status"])
            if cmd["type"] in PAYMENT_COMMANDS:
                events += payment_events(cmd["event_id"], cmd["booking_id"], result)
                follow_ups += payment_follow_ups(cmd["event_id"], cmd["booking_id"], result)
            elif result["status"] == "reserved":
                events.append(messages.booking_created_event(cmd, result))
            elif result["status"] == "cancelled":  # again on a redelivery: the consumers are idempotent
                events.append(messages.booking_cancelled_event(cmd, result))
            elif result["status"] == "adjusted":
                events.append(messages.zone_adjusted_event(cmd, result))
            elif cmd["type"] == messages.LOAD_INVENTORY:
                events.append(messages.inventory_loaded_event(cmd, result))
            if cmd.get("reply_to"):  # system commands (payment outcomes, refunds done) have none
                replies.append((cmd["reply_to"], cmd["event_id"], messages.reply(cmd, result)))
            if "trace" in cmd:
                for event in events[traced_from:]:
                    event["trace"] = cmd["trace"]
        return events, replies, follow_ups

    async def _produce(self, events: list[dict[str, Any]]) -> None:
        topic = self.settings.events_topic
        pending = []
        for event in events:
            carried = event.get("trace")
            if carried:  # the trace goes in the record's headers, not in the event
                event = {k: v for k, v in event.items() if k != "trace"}
            pending.append(
                await self.producer.send(
                    topic,
                    messages.encode(event),
                    key=(event.get("show_id") or event["event_id"]).encode(),  # a load: every show
                    headers=tracing.kafka_headers(carried),
                )
            )
        await asyncio.gather(*pending)

    async def _answer(
        self, replies: list[tuple[str, str, dict[str, Any]]], booked: list[tuple[str, str]], loaded: list[str]
    ) -> None:
        """One pub/sub message per gateway for the whole batch, and the results for the poll;
        first, each new booking's event into its user's event set (keys.user_events), and each
        event whose seats went on sale into the live events (keys.LIVE_EVENTS: another slot
        than the event's keys, so not in the script)."""
        by_channel: dict[str, list[dict[str, Any]]] = defaultdict(list)
        by_event: dict[str, tuple[list[str], list[bytes]]] = defaultdict(lambda: ([], []))
        for channel, event_id, r in replies:
            by_channel[channel].append(r)
            result_keys, values = by_event[event_id]
            result_keys.append(keys.request_result(event_id, r["request_id"]))
            values.append(messages.encode(r))

        def fill(pipe) -> None:
            for user_id, event_id in booked:
                pipe.sadd(keys.user_events(user_id), event_id)
            for event_id in loaded:
                pipe.sadd(keys.LIVE_EVENTS, event_id)
            for result_keys, values in by_event.values():
                queue_script(
                    pipe, self.scripts.store_results, result_keys, [self.settings.result_ttl_s, *values]
                )
            for channel, batch in by_channel.items():
                pipe.publish(keys.reply_channel(channel), messages.encode(batch))

        async with asyncio.timeout(self.settings.redis_timeout_s):
            await execute_scripted(self.redis, fill, self.scripts)


def trace_commands(commands: list[dict[str, Any]], produced: int, answered: int, done: int) -> None:
    """A span per traced command, continuing its request's trace, with the batch's stages as
    children: the Lua scripts, the events' produce (acknowledged) and the answer."""
    for cmd in commands:
        if "_lua_ns" not in cmd:
            continue
        lua_started, lua_done = cmd["_lua_ns"]
        span = tracing.TRACER.start_span(
            f"apply {cmd['type']}",
            context=tracing.context_of(cmd["trace"]),
            kind=SpanKind.CONSUMER,
            start_time=lua_started,
            attributes={"booking.event_id": cmd["event_id"], "messaging.destination.name": "reservations"},
        )
        inside = trace.set_span_in_context(span)
        for name, started, ended in (
            ("redis lua batch", lua_started, lua_done),
            ("kafka produce booking.events", produced, answered),
            ("redis answer", answered, done),
        ):
            tracing.TRACER.start_span(name, context=inside, start_time=started).end(end_time=ended)
        span.end(end_time=done)


def count_reservation(event_id: str, status: str) -> None:
    if status == "reserved":
        worker_metrics.RESERVATIONS.labels(event_id).inc()
    else:
        worker_metrics.RESERVATION_FAILURES.labels(event_id, status).inc()


PAYMENT_COMMANDS = frozenset({messages.BEGIN_PAYMENT, messages.SETTLE_PAYMENT, messages.REFUND})


def payment_events(event_id: str, booking_id: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    """The records a payment script returned, as events: the booking's and the payment's (also
    again on a replay; versions make PostgreSQL keep only what is newer)."""
    booking, payment = result.get("booking"), result.get("payment")
    if not booking or not payment or result["status"] in ("not_found", "not_payable", "reservation_expired"):
        return []
    return [
        messages.booking_event(event_id, booking_id, booking),
        messages.payment_event(event_id, payment, booking),
    ]


# A settled payment or refund step, and the mails it is told by (workers/notifications.py).
MAIL_AFTER = {
    "confirmed": ("payment_success", "booking_confirmed"),
    "payment_failed": ("payment_failed",),
    "refunded": ("refunded",),
}


def payment_follow_ups(event_id: str, booking_id: str, result: dict[str, Any]) -> list[tuple]:
    status = result["status"]
    follow: list[tuple] = []
    if status in ("late_success", "refund_approved"):
        follow.append((jobs.PROCESS_REFUND, event_id, result["payment"]["payment_id"]))
    follow += [(jobs.NOTIFY, kind, event_id, booking_id) for kind in MAIL_AFTER.get(status, ())]
    return follow


class AssignmentLog(ConsumerRebalanceListener):
    """Says which partitions this worker took (the demo waits for every worker to have some)."""

    async def on_partitions_revoked(self, revoked) -> None:
        log.info("command partitions revoked: %d", len(revoked))

    async def on_partitions_assigned(self, assigned) -> None:
        log.info("command partitions assigned: %s", sorted(tp.partition for tp in assigned))
        print(f"assigned {len(assigned)} command partitions", flush=True)


class BatchStats:
    """Commands and batches since the last report, logged at most every `every_s` seconds."""

    def __init__(self, logger: logging.Logger, what: str = "commands", every_s: float = 10.0) -> None:
        self.logger, self.what, self.every_s = logger, what, every_s
        self.commands = self.batches = 0
        self.since = time.monotonic()

    def add(self, commands: int) -> None:
        self.commands += commands
        self.batches += 1

    def maybe_log(self) -> None:
        elapsed = time.monotonic() - self.since
        if elapsed < self.every_s:
            return
        if self.batches:
            self.logger.info(
                "%d %s in %d batches (%.1f per batch, %.0f/s)",
                self.commands,
                self.what,
                self.batches,
                self.commands / self.batches,
                self.commands / elapsed,
            )
        self.commands = self.batches = 0
        self.since = time.monotonic()


class CommandConsumer:
    """An aiokafka group member on `reservations` (static membership: a restart does not stall).

    Two stages overlap: while batch N's events wait for Kafka's acknowledgement and its answers
    go out, batch N+1 is fetched and its scripts run. Stage 2 runs one batch at a time, in
    order, and each batch's offsets are committed only after its own stage 2, so a crash or a
    failure anywhere redelivers every batch not yet answered, and the replay is idempotent.
    """

    def __init__(
        self, redis, scripts: SaleScripts, producer: AIOKafkaProducer, settings: WorkerSettings
    ) -> None:
        self.settings = settings
        self.processor = CommandProcessor(redis, scripts, producer, settings)
        # Subscribed in run(), with a listener that reports each assignment.
        self.consumer = group_consumer(None, settings.command_group, "commands", settings)
        self.stats = BatchStats(log)
        self._finishing: asyncio.Task | None = None  # stage 2 of the previous batch
        self._committing: asyncio.Task | None = None  # the offset commit in flight
        self._pending_offsets: dict[TopicPartition, int] = {}  # answered, not yet committed

    async def run(self, stop: asyncio.Event) -> None:
        self.consumer.subscribe([self.settings.reservations_topic], listener=AssignmentLog())
        await self.consumer.start()
        try:
            while not stop.is_set():
                batches = await self.consumer.getmany(timeout_ms=200, max_records=self.settings.batch_size)
                metrics.record_lag(
                    self.consumer, self.settings.command_group, self.settings.reservations_topic, batches
                )
                if batches:
                    await self._apply(batches)
                elif self._finishing is not None and self._finishing.done():
                    await self._settle()
                self.stats.maybe_log()
            await self._settle()
            await self._drain_commits()
        finally:
            await asyncio.wait_for(self.consumer.stop(), self.settings.shutdown_timeout_s)

    @staticmethod
    def _decode(batches: dict[TopicPartition, list]) -> list[dict[str, Any]]:
        commands = []
        for records in batches.values():
            for record in records:
                try:
                    decoded = messages.decode(record.value)
                except ValueError:
                    log.error("skipping undecodable command at %s:%s", record.partition, record.offset)
                    continue
                # A gateway batches one loop iteration's commands for a show into one record.
                for command in decoded if isinstance(decoded, list) else [decoded]:
                    # The broker's append time (LogAppendTime topic); fixed per record, so
                    # every redelivery of a late command is refused the same way.
                    command["appended_ms"] = record.timestamp
                    commands.append(command)
        return commands

    async def _apply(self, batches: dict[TopicPartition, list]) -> None:
        commands = self._decode(batches)
        try:
            outputs = await self.processor.apply(commands)
            await self._settle()  # stage 2 of the batch before, so answers stay in order
        except Exception:
            await self._rewind(len(commands))
            return
        offsets = {tp: records[-1].offset + 1 for tp, records in batches.items()}
        self._finishing = asyncio.create_task(self._finish(commands, outputs, offsets))

    async def _finish(self, commands, outputs, offsets: dict[TopicPartition, int]) -> None:
        await self.processor.publish(commands, outputs)
        # The batch is answered; its commit need not delay the next batch's answers.
        self._pending_offsets.update(offsets)
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit_pending())
        self.stats.add(len(commands))

    async def _commit_pending(self) -> None:
        """One commit at a time; offsets that arrive meanwhile go in the next (later wins)."""
        while self._pending_offsets:
            offsets, self._pending_offsets = self._pending_offsets, {}
            try:
                await self.consumer.commit(offsets)
            except KafkaError as exc:  # e.g. a rebalance: those records come again and replay
                log.warning("offset commit failed (%s); the batch will be redelivered", exc)

    async def _settle(self) -> None:
        """Wait for the previous batch's stage 2; re-raise its failure."""
        task, self._finishing = self._finishing, None
        if task is not None:
            await task

    async def _drain_commits(self) -> None:
        task, self._committing = self._committing, None
        if task is not None:
            await task

    async def _rewind(self, count: int) -> None:
        """Nothing past the last committed batch counts: fetch it all again and replay it."""
        log.exception("a batch of %d commands failed; rewinding to retry", count)
        if self._finishing is not None:  # its outcome no longer matters: it is rewound too
            self._finishing.cancel()
            await asyncio.gather(self._finishing, return_exceptions=True)
            self._finishing = None
        await self._drain_commits()  # seek to what is really committed
        committed = await self.consumer.seek_to_committed()
        never = [tp for tp, offset in committed.items() if not offset]
        if never:  # no commit yet in this group: the reset policy's start, the beginning
            await self.consumer.seek_to_beginning(*never)
        await asyncio.sleep(0.5)  # back off before refetching (retry pacing, not sync)
