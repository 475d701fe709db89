"""The command consumer: commands in (reservations, expiries, payments, refunds, seat counts,
inventory loads), one Lua script each, events out.

Per fetched batch: every command's script runs in one Redis pipeline (workers/command_scripts.py
says which, with what); what the scripts answered becomes events, replies and follow-up jobs
(workers/outcomes.py); the events are produced to `booking.events` and acknowledged (acks=all,
idempotent producer); then each gateway gets one pub/sub message for the batch, each result is
stored for the 202 poll, and only then are the offsets committed. A crash anywhere before the
commit redelivers the batch, and the idempotency records make the replay answer exactly as the
first run did.
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

from booking_rush.contract import messages
from booking_rush.services.clients import group_consumer
from booking_rush.services.job_queue import JobQueue
from booking_rush.telemetry import metrics, tracing
from lua import SaleScripts, execute_scripted, keys, queue_script
from workers.batch_stats import BatchStats
from workers.command_scripts import queue_command
from workers.outcomes import LATE_COMMAND_OUTPUT, Outcomes, outcomes
from workers.settings import WorkerSettings

log = logging.getLogger("workers.commands")


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
        done = outcomes(commands, outputs)
        produced = time.time_ns()
        await self._produce(done.events)
        answered = time.time_ns()
        await self._answer(done)
        trace_commands(commands, produced, answered, time.time_ns())
        # After the events are acknowledged and before the offsets are committed: a crash in
        # between sends them again, and every job is idempotent.
        for actor_name, *args in done.follow_ups:
            await self.job_queue.send(actor_name, *args)

    async def _run_scripts(self, commands: list[dict[str, Any]]) -> list[Any]:
        now = messages.now_ms()
        # The gateway told these clients 503 "nothing accepted": keep that true.
        late = [cmd["type"] == messages.RESERVE and _accepted_too_late(cmd) for cmd in commands]
        scripts, settings = self.scripts, self.settings

        def fill(pipe) -> None:
            for cmd, is_late in zip(commands, late, strict=True):
                if not is_late:
                    queue_command(pipe, scripts, cmd, now, settings)

        async with asyncio.timeout(self.settings.redis_timeout_s):
            with metrics.timed(metrics.REDIS_DURATION, service="worker", operation="command_batch"):
                outputs = iter(await execute_scripted(self.redis, fill, self.scripts))
        return [LATE_COMMAND_OUTPUT if is_late else next(outputs) for is_late in late]

    async def _produce(self, events: list[dict[str, Any]]) -> None:
        topic = self.settings.topics.events
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

    async def _answer(self, done: Outcomes) -> None:
        """One pub/sub message per gateway for the whole batch, and the results for the poll;
        first, each new booking's event into its user's event set (keys.user_events), and each
        event whose seats went on sale into the live events (keys.LIVE_EVENTS: another slot
        than the event's keys, so not in the script)."""
        by_channel: dict[str, list[dict[str, Any]]] = defaultdict(list)
        by_event: dict[str, tuple[list[str], list[bytes]]] = defaultdict(lambda: ([], []))
        for channel, event_id, r in done.replies:
            by_channel[channel].append(r)
            result_keys, values = by_event[event_id]
            result_keys.append(keys.request_result(event_id, r["request_id"]))
            values.append(messages.encode(r))

        def fill(pipe) -> None:
            for user_id, event_id in done.booked:
                pipe.sadd(keys.user_events(user_id), event_id)
            for event_id in done.loaded:
                pipe.sadd(keys.LIVE_EVENTS, event_id)
            for event_id in done.cancelled:  # the sweeper resumes a settlement a worker dropped
                pipe.sadd(keys.CANCELLATIONS, event_id)
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


class AssignmentLog(ConsumerRebalanceListener):
    """Says which partitions this worker took (the demo waits for every worker to have some)."""

    async def on_partitions_revoked(self, revoked) -> None:
        log.info("command partitions revoked: %d", len(revoked))

    async def on_partitions_assigned(self, assigned) -> None:
        log.info("command partitions assigned: %s", sorted(tp.partition for tp in assigned))
        print(f"assigned {len(assigned)} command partitions", flush=True)


Fetched = dict[TopicPartition, list]  # what one getmany returns: records per partition


class CommandConsumer:
    """An aiokafka group member on `reservations` (static membership: a restart does not stall).

    Two stages overlap: while batch N's events wait for Kafka's acknowledgement and its answers
    go out, batch N+1 is fetched and its scripts run. Stage 2 runs one batch at a time, in
    order, and each batch's offsets are committed only after its own stage 2, so a crash or a
    failure anywhere redelivers every batch not yet answered, and the replay is idempotent.

    Batches form by themselves: a batch that is not full and finds batch N still in stage 2
    waits for it, and what arrived meanwhile joins it. At a moderate rate that is one script
    pipeline, one produce and one answer for several fetches' commands instead of one each; a
    quiet system has nothing in flight and waits for nothing, and a full batch (saturation) does
    not wait, keeping the two stages overlapped.
    """

    def __init__(
        self, redis, scripts: SaleScripts, producer: AIOKafkaProducer, settings: WorkerSettings
    ) -> None:
        self.settings = settings
        self.processor = CommandProcessor(redis, scripts, producer, settings)
        # Subscribed in run(), with a listener that reports each assignment.
        self.consumer = group_consumer(
            None,
            settings.command_group,
            "commands",
            settings,
            fetch_min_bytes=settings.command_fetch_min_bytes,
            fetch_max_wait_ms=settings.command_fetch_wait_ms,
        )
        self.stats = BatchStats(log)
        self._finishing: asyncio.Task | None = None  # stage 2 of the previous batch
        self._committing: asyncio.Task | None = None  # the offset commit in flight
        self._pending_offsets: dict[TopicPartition, int] = {}  # answered, not yet committed

    async def run(self, stop: asyncio.Event) -> None:
        self.consumer.subscribe([self.settings.topics.reservations], listener=AssignmentLog())
        await self.consumer.start()
        try:
            while not stop.is_set():
                batches = await self.consumer.getmany(timeout_ms=200, max_records=self.settings.batch_size)
                metrics.record_lag(
                    self.consumer, self.settings.command_group, self.settings.topics.reservations, batches
                )
                if batches:
                    await self._apply(await self._joined_while_answering(batches))
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

    async def _joined_while_answering(self, batches: Fetched) -> Fetched:
        """`batches`, and what arrived while the batch before was still in stage 2."""
        room = self.settings.batch_size - sum(len(records) for records in batches.values())
        finishing = self._finishing
        if room <= 0 or finishing is None or finishing.done():
            return batches
        await asyncio.wait([finishing])  # its failure is raised by _settle, in _apply
        more = await self.consumer.getmany(timeout_ms=0, max_records=room)
        for tp, records in more.items():
            batches.setdefault(tp, []).extend(records)  # later offsets of the same partitions
        return batches

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
        """One commit at a time, at most one per commit interval; offsets answered meanwhile go
        in the next (later wins)."""
        loop = asyncio.get_running_loop()
        interval_s = self.settings.commit_interval_ms / 1000
        while self._pending_offsets:
            offsets, self._pending_offsets = self._pending_offsets, {}
            started = loop.time()
            try:
                await self.consumer.commit(offsets)
            except KafkaError as exc:  # e.g. a rebalance: those records come again and replay
                log.warning("offset commit failed (%s); the batch will be redelivered", exc)
            await asyncio.sleep(max(0.0, interval_s - (loop.time() - started)))  # pacing

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
