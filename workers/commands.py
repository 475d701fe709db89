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

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from lua import SaleScripts, keys
from workers import messages
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
        self, redis, scripts: SaleScripts, producer: AIOKafkaProducer, settings: WorkerSettings
    ) -> None:
        self.redis = redis
        self.scripts = scripts
        self.producer = producer
        self.settings = settings

    async def handle(self, commands: list[dict[str, Any]]) -> None:
        if not commands:
            return
        outputs = await self._run_scripts(commands)
        if self.settings.crash_after_lua:
            os.kill(os.getpid(), signal.SIGKILL)
        events, replies = self._outcomes(commands, outputs)
        await self._produce(events)
        await self._answer(replies)

    async def _run_scripts(self, commands: list[dict[str, Any]]) -> list[Any]:
        s = self.settings
        now = now_ms()
        # The gateway told these clients 503 "nothing accepted": keep that true.
        late = [cmd["type"] == messages.RESERVE and _accepted_too_late(cmd) for cmd in commands]
        async with self.redis.pipeline(transaction=False) as pipe:
            for cmd, is_late in zip(commands, late, strict=True):
                ev = cmd["event_id"]
                if is_late:
                    continue
                if cmd["type"] == messages.RESERVE:
                    scope = messages.idempotency_scope(cmd.get("idempotency_key"), cmd["request_id"])
                    await self.scripts.reserve_seats(
                        keys=[
                            keys.idempotency(ev, cmd["user_id"], scope),
                            keys.zone(ev, cmd["show_id"], cmd["zone_id"]),
                            keys.user_count(ev, cmd["user_id"]),
                            keys.hold(ev, cmd["booking_id"]),
                            keys.expiry_index(ev),
                            keys.event_meta(ev),
                        ],
                        args=[
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
                        ],
                        client=pipe,
                    )
                else:
                    await self.scripts.expire_hold(
                        keys=[
                            keys.hold(ev, cmd["booking_id"]),
                            keys.zone(ev, cmd["show_id"], cmd["zone_id"]),
                            keys.user_count(ev, cmd["user_id"]),
                            keys.expiry_index(ev),
                        ],
                        # The sweeper judged the hold due as of its clock; the script re-checks.
                        args=[
                            cmd["booking_id"],
                            cmd.get("as_of_ms", now),
                            cmd["user_id"],
                            cmd["show_id"],
                            cmd["zone_id"],
                        ],
                        client=pipe,
                    )
            outputs = iter(await pipe.execute())
        return [LATE_COMMAND_OUTPUT if is_late else next(outputs) for is_late in late]

    @staticmethod
    def _outcomes(commands, outputs):
        """Events to produce, and (reply channel, reply) pairs for the gateways."""
        events: list[dict[str, Any]] = []
        replies: list[tuple[str, dict[str, Any]]] = []
        for cmd, out in zip(commands, outputs, strict=True):
            if cmd["type"] == messages.RESERVE:
                result = messages.decode(out[0])
                if result["status"] == "reserved":
                    events.append(messages.booking_created_event(cmd, result))
                replies.append((cmd["reply_to"], messages.reply(cmd, result)))
                continue
            code, raw = int(out[0]), out[1]
            if code in (1, 2):  # 2: already expired; re-emit, the consumers are idempotent
                events.append(messages.booking_expired_event(cmd, messages.decode(raw)))
            elif code == -2:
                log.error("expire command names keys that do not match its hold: %s", cmd)
        return events, replies

    async def _produce(self, events: list[dict[str, Any]]) -> None:
        topic = self.settings.events_topic
        pending = [
            await self.producer.send(topic, messages.encode(e), key=e["show_id"].encode()) for e in events
        ]
        await asyncio.gather(*pending)

    async def _answer(self, replies: list[tuple[str, dict[str, Any]]]) -> None:
        """One pub/sub message per gateway for the whole batch, plus a result key per request."""
        by_channel: dict[str, list[dict[str, Any]]] = defaultdict(list)
        async with self.redis.pipeline(transaction=False) as pipe:
            for channel, r in replies:
                by_channel[channel].append(r)
                event_id = messages.event_of(r["request_id"])
                pipe.set(
                    keys.request_result(event_id, r["request_id"]),
                    messages.encode(r),
                    ex=self.settings.result_ttl_s,
                )
            for channel, batch in by_channel.items():
                pipe.publish(keys.reply_channel(channel), messages.encode(batch))
            await pipe.execute()


class CommandConsumer:
    """An aiokafka group member on `reservations` (static membership: a restart does not stall)."""

    def __init__(
        self, redis, scripts: SaleScripts, producer: AIOKafkaProducer, settings: WorkerSettings
    ) -> None:
        self.settings = settings
        self.processor = CommandProcessor(redis, scripts, producer, settings)
        self.consumer = AIOKafkaConsumer(
            settings.reservations_topic,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=settings.command_group,
            group_instance_id=f"{settings.instance_id}-commands",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.session_timeout_ms,
            max_poll_records=settings.batch_size,
        )

    async def run(self, stop: asyncio.Event) -> None:
        await self.consumer.start()
        try:
            while not stop.is_set():
                batches = await self.consumer.getmany(timeout_ms=200, max_records=self.settings.batch_size)
                if batches:
                    await self._apply(batches)
        finally:
            await asyncio.wait_for(self.consumer.stop(), self.settings.shutdown_timeout_s)

    async def _apply(self, batches: dict[TopicPartition, list]) -> None:
        commands = []
        for records in batches.values():
            for record in records:
                try:
                    command = messages.decode(record.value)
                except ValueError:
                    log.error("skipping undecodable command at %s:%s", record.partition, record.offset)
                    continue
                # The broker's append time (LogAppendTime topic); fixed per record, so every
                # redelivery of a late command is refused the same way.
                command["appended_ms"] = record.timestamp
                commands.append(command)
        try:
            await self.processor.handle(commands)
        except Exception:
            # Not committed: rewind and retry the whole batch; replays are idempotent.
            log.exception("batch of %d commands failed; retrying", len(commands))
            for tp, records in batches.items():
                self.consumer.seek(tp, records[0].offset)
            await asyncio.sleep(0.5)  # back off before refetching (retry pacing, not sync)
            return
        await self.consumer.commit({tp: records[-1].offset + 1 for tp, records in batches.items()})
