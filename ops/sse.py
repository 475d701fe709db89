"""Reading a text/event-stream body (the live-position stream) as a client does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator


async def sse_events(content) -> AsyncIterator[tuple[str | None, dict]]:
    """(event name, decoded data) for each `data:` line of an aiohttp response's content."""
    kind = None
    async for raw in content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            yield kind, json.loads(line[5:])
