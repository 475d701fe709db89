"""The baseline for the waiting-room benchmark: a bare aiohttp + uvloop SSE server, nothing else.

Usage: python -m ops.bench_sse_baseline --port 18082 [--heartbeat 5]

GET /stream?n=<place> holds an event stream open. Once a second a broadcast moves the line on,
the idiomatic way: it sets every handler's asyncio.Event, and each handler, woken, builds its
own event (about 200 bytes of JSON, like the waiting room's) and awaits response.write(). The
fan-out (from the broadcast to the last woken handler's write) is logged with each heartbeat in
the gateway's words (gateway/queue_stream.py), so ops/bench_queue.py reads both the same way:
"N streams open; tick fan-out over K ticks: median X ms, max Y ms".
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import time

import orjson
import uvloop
from aiohttp import web

log = logging.getLogger("bench_sse_baseline")

ADMITTED_PER_TICK = 10
EVENT_ID = "00000000-0000-4000-8000-000000000000"


class Fanout:
    """One broadcast: done when every handler it woke has written."""

    __slots__ = ("started", "pending", "sealed")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.pending = 0
        self.sealed = False


class Line:
    """The open streams (each handler's wake-up) and the line's progress."""

    def __init__(self) -> None:
        self.wakes: dict[asyncio.Event, Fanout | None] = {}  # handler -> the broadcast it owes a write
        self.head = 0
        self.spans_ms: list[float] = []

    def broadcast(self) -> None:
        self.head += ADMITTED_PER_TICK
        fanout = Fanout()
        for wake, owed in self.wakes.items():
            if owed is None:  # a handler still writing the last broadcast picks this one up after
                self.wakes[wake] = fanout
                fanout.pending += 1
            wake.set()
        fanout.sealed = True  # from now on the last write closes it (a broadcast to nobody: never)

    def written(self, wake: asyncio.Event) -> None:
        fanout = self.wakes.get(wake)
        if fanout is not None:
            self.wakes[wake] = None
            fanout.pending -= 1
            self._check(fanout)

    def _check(self, fanout: Fanout) -> None:
        if fanout.pending == 0 and fanout.sealed:
            self.spans_ms.append((time.perf_counter() - fanout.started) * 1000)

    def event(self, place: int, seq: int) -> bytes:
        ahead = max(0, place - self.head - 1)
        payload = {
            "event_id": EVENT_ID,
            "state": "waiting",
            "position": ahead + 1,
            "ahead": ahead,
            "waiting": len(self.wakes),
            "eta_seconds": round((ahead + 1) * 60 / (ADMITTED_PER_TICK * 60)),
            "admission_rate_per_min": ADMITTED_PER_TICK * 60,
        }
        return b"id: %d\nevent: standing\ndata: %s\n\n" % (seq, orjson.dumps(payload))


LINE = web.AppKey("line", Line)


async def stream(request: web.Request) -> web.StreamResponse:
    line = request.app[LINE]
    place = int(request.query.get("n", "0"))
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    wake = asyncio.Event()
    line.wakes[wake] = None
    try:
        await response.write(b"retry: 3000\n\n" + line.event(place, line.head))
        while True:
            await wake.wait()
            wake.clear()
            await response.write(line.event(place, line.head))
            line.written(wake)
    except ConnectionError:
        return response
    finally:
        line.written(wake)
        del line.wakes[wake]


async def ready(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def ticking(app: web.Application, heartbeat_s: float):
    line = app[LINE] = Line()

    async def run() -> None:
        next_tick = next_beat = time.monotonic()
        while True:
            next_tick += 1.0
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
            line.broadcast()
            if time.monotonic() >= next_beat + heartbeat_s:
                next_beat = time.monotonic()
                spans, line.spans_ms = sorted(line.spans_ms), []
                if spans:
                    log.info(
                        "%d streams open; tick fan-out over %d ticks: median %.1f ms, max %.1f ms",
                        len(line.wakes),
                        len(spans),
                        spans[len(spans) // 2],
                        spans[-1],
                    )

    task = asyncio.create_task(run())
    yield
    task.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=18082)
    parser.add_argument("--heartbeat", type=float, default=5.0, help="seconds between fan-out lines")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = web.Application()
    app.cleanup_ctx.append(functools.partial(ticking, heartbeat_s=args.heartbeat))
    app.router.add_get("/stream", stream)
    app.router.add_get("/", ready)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
