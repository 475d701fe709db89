"""A librdkafka (confluent-kafka) producer behind aiokafka's `send` shape, for issue 18's spike.

`send()` enqueues in librdkafka and returns a future the delivery report resolves: the same
contract as `AIOKafkaProducer.send` (await it to enqueue, await its result for the ack).
librdkafka does the protocol work and its own batching in C threads; one Python thread polls for
delivery reports and hands them to the event loop in one call per poll.
"""

from __future__ import annotations

import asyncio
import threading

from confluent_kafka import KafkaException, Producer


class RdKafkaProducer:
    def __init__(self, bootstrap: str, *, linger_ms: int = 0, request_timeout_ms: int = 5000) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,  # implies acks=all and ordered retries
                "acks": "all",
                "linger.ms": linger_ms,
                "request.timeout.ms": request_timeout_ms,
                # Java's (and aiokafka's) murmur2 for keyed records: a show lands on the same
                # partition whichever client produced it.
                "partitioner": "murmur2_random",
            }
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()
        self._poller: threading.Thread | None = None
        self._reports: list[tuple[asyncio.Future, BaseException | None]] = []
        self._lock = threading.Lock()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # Fail at start, as aiokafka does, when no broker answers.
        await asyncio.to_thread(self._producer.list_topics, timeout=10)
        self._poller = threading.Thread(target=self._poll, name="rdkafka-poll", daemon=True)
        self._poller.start()

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> asyncio.Future:
        assert self._loop is not None, "start() first"
        acked = self._loop.create_future()

        def delivered(err, _msg) -> None:  # runs on the poll thread
            exc = None if err is None else KafkaException(err)
            with self._lock:
                first = not self._reports
                self._reports.append((acked, exc))
            if first:  # one wake-up of the loop per poll's worth of reports
                self._loop.call_soon_threadsafe(self._settle)

        self._producer.produce(topic, value, key, on_delivery=delivered)
        return acked

    def _settle(self) -> None:
        with self._lock:
            reports, self._reports = self._reports, []
        for acked, exc in reports:
            if acked.done():
                continue
            if exc is None:
                acked.set_result(None)
            else:
                acked.set_exception(exc)

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.1)

    async def stop(self) -> None:
        await asyncio.to_thread(self._producer.flush, 10)
        self._stopping.set()
        if self._poller is not None:
            await asyncio.to_thread(self._poller.join)
