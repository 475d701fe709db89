"""The payment workers' own metrics: outcomes at the provider, and the depth of the Dramatiq
queues (what KEDA scales them on)."""

from __future__ import annotations

import logging

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from redis.exceptions import RedisError

log = logging.getLogger("telemetry.payment_metrics")

PAYMENT_OUTCOMES = Counter(
    "payment_outcomes", "Payments settled and refunds completed at the provider", ["outcome"]
)


class DramatiqQueueDepth:
    """dramatiq_queue_depth{queue}: jobs waiting in each queue of the aux Redis (".DQ": retries
    waiting out their delay), read at scrape (KEDA reads the same lists). `redis_client` should
    time out quickly: an aux Redis that does not answer leaves the series out of that scrape,
    and the rest of /metrics (the probes read it) still answers."""

    NAME, LABELS = "dramatiq_queue_depth", ("queue",)

    def __init__(self, redis_client, namespace: str, queues: list[str]) -> None:
        self.redis, self.namespace, self.queues = redis_client, namespace, queues

    def collect(self):
        family = GaugeMetricFamily(self.NAME, "Jobs waiting in a Dramatiq queue", labels=list(self.LABELS))
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for queue in self.queues:
                    pipe.llen(f"{self.namespace}:{queue}")
                depths = pipe.execute()
        except RedisError as exc:
            log.warning("dramatiq_queue_depth left out of this scrape: %s", exc)
            depths = []
        for queue, depth in zip(self.queues, depths, strict=False):
            family.add_metric([queue], depth)
        yield family
