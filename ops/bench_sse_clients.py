"""Load clients for ops/bench_queue.py: one process holding thousands of Server-Sent Event streams.

Usage: python -m ops.bench_sse_clients --source 127.0.0.11
Driven over stdin and stdout, one JSON object a line:
  {"op": "open", "port": P, "paths": [...], "concurrency": 32}
      -> {"opened": n, "failed": m, "errors": {reason: count}, "seconds": s}
      one stream per path, at most `concurrency` opening at once; a stream counts as opened once
      its first event has arrived
  {"op": "stats"} -> {"open": n, "standing": x, "admitted": y, "heartbeats": h, "bytes": b, "ended": e}
  {"op": "close"} -> {"closed": n}
End of input closes every stream and exits.

Each stream is a bare asyncio protocol on uvloop that only counts what arrives (a few hundred
bytes of client memory a stream), connected from --source so that several processes together do
not run out of ephemeral ports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections import Counter

import uvloop

STANDING = b"\nevent: standing\n"
ADMITTED = b"\nevent: admitted\n"
HEARTBEAT = b"event: heartbeat\n"
TAIL = 32  # longer than every pattern: one split across two reads is still counted once


class Refused(Exception):
    """The server answered with something other than 200."""


class Counts:
    __slots__ = ("standing", "admitted", "heartbeats", "bytes", "ended")

    def __init__(self) -> None:
        self.standing = self.admitted = self.heartbeats = self.bytes = self.ended = 0


class Stream(asyncio.Protocol):
    """One event stream: sends its request, checks the status line, counts events."""

    __slots__ = ("counts", "request", "transport", "first", "tail", "closing", "lost")

    def __init__(self, counts: Counts, request: bytes, first: asyncio.Future) -> None:
        self.counts = counts
        self.request = request
        self.first: asyncio.Future | None = first  # resolved by the first event
        self.transport: asyncio.Transport | None = None
        self.tail = b""  # the end of the last read, so an event split between reads counts once
        self.closing = False
        self.lost: asyncio.Future | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)
        self.request = b""

    def data_received(self, data: bytes) -> None:
        c = self.counts
        c.bytes += len(data)
        if self.first is not None and not self.tail and not data.startswith(b"HTTP/1.1 200"):
            self.first.set_exception(Refused(data[:12].decode(errors="replace")))
            self.first = None
            self.transport.close()
            return
        # The old tail ends the last read, whose events were counted then.
        old, buf = self.tail, self.tail + data
        standing = buf.count(STANDING) - old.count(STANDING)
        admitted = buf.count(ADMITTED) - old.count(ADMITTED)
        c.standing += standing
        c.admitted += admitted
        c.heartbeats += buf.count(HEARTBEAT) - old.count(HEARTBEAT)
        self.tail = buf[-TAIL:]
        if self.first is not None and (standing or admitted):
            self.first.set_result(None)
            self.first = None

    def connection_lost(self, exc) -> None:
        if self.first is not None:
            self.first.set_exception(exc or ConnectionResetError("closed before the first event"))
            self.first = None
        elif not self.closing:
            self.counts.ended += 1
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)


class Fleet:
    def __init__(self, source: str) -> None:
        self.source = source
        self.counts = Counts()
        self.streams: list[Stream] = []

    async def open(self, port: int, paths: list[str], concurrency: int) -> dict:
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(concurrency)
        errors: Counter[str] = Counter()
        started = time.monotonic()

        async def one(path: str) -> None:
            request = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: text/event-stream\r\n\r\n" % (
                path.encode(),
                port,
            )
            async with gate:
                first = loop.create_future()
                stream = Stream(self.counts, request, first)
                try:
                    await loop.create_connection(
                        lambda: stream, "127.0.0.1", port, local_addr=(self.source, 0)
                    )
                    await asyncio.wait_for(first, 60)
                except (OSError, TimeoutError, Refused) as exc:
                    errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
                    if stream.transport is not None:
                        stream.closing = True
                        stream.transport.abort()
                    return
                self.streams.append(stream)

        await asyncio.gather(*(one(p) for p in paths))
        return {
            "opened": len(paths) - sum(errors.values()),
            "failed": sum(errors.values()),
            "errors": dict(errors),
            "seconds": round(time.monotonic() - started, 3),
        }

    def stats(self) -> dict:
        c = self.counts
        return {
            "open": len(self.streams) - c.ended,
            "standing": c.standing,
            "admitted": c.admitted,
            "heartbeats": c.heartbeats,
            "bytes": c.bytes,
            "ended": c.ended,
        }

    async def close(self, timeout: float = 30) -> dict:
        loop = asyncio.get_running_loop()
        waits = []
        for stream in self.streams:
            if stream.transport is not None and not stream.transport.is_closing():
                stream.closing = True
                stream.lost = loop.create_future()
                waits.append(stream.lost)
                stream.transport.close()
        if waits:
            await asyncio.wait(waits, timeout=timeout)
        closed = len(self.streams)
        self.streams.clear()
        self.counts.ended = 0
        return {"closed": closed}


async def serve(source: str) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 28)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    fleet = Fleet(source)
    try:
        while line := await reader.readline():
            command = json.loads(line)
            op = command["op"]
            if op == "open":
                answer = await fleet.open(command["port"], command["paths"], command.get("concurrency", 32))
            elif op == "stats":
                answer = fleet.stats()
            elif op == "close":
                answer = await fleet.close()
            else:
                answer = {"error": f"unknown op {op!r}"}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
    finally:
        await fleet.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", default="127.0.0.1", help="the address streams connect from")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvloop.run(serve(args.source))


if __name__ == "__main__":
    main()
