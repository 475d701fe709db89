"""Event list and detail come from the aux Redis cache, and any catalog change invalidates them."""

from __future__ import annotations

import orjson


async def test_detail_is_served_from_the_cache_until_the_catalog_changes(
    gateway_url, http, make_event, aux, pg
):
    event = await make_event([("VIP", 5)], shows=1)
    url = f"{gateway_url}/api/v1/events/{event.event_id}"
    async with http.get(url) as r:
        assert (await r.json())["data"]["title"].startswith("Event ")
    # Plant a marker in the entry the gateway just stored: the next read must return it.
    generation = await pg.fetchval("SELECT generation FROM catalog_state")
    keys = [k async for k in aux.scan_iter(match=f"cache:event:{generation}:*")]
    for key in keys:
        cached = orjson.loads(await aux.get(key))
        if cached and cached["id"] == event.event_id:
            await aux.set(key, orjson.dumps({**cached, "title": "served from the cache"}), ex=60)
    async with http.get(url) as r:
        assert (await r.json())["data"]["title"] == "served from the cache"

    await pg.execute("UPDATE events SET title = 'Renamed' WHERE id = $1", event.event_id)
    assert await pg.fetchval("SELECT generation FROM catalog_state") > generation
    async with http.get(url) as r:
        assert (await r.json())["data"]["title"] == "Renamed"  # a new generation, a new entry


async def test_a_new_event_shows_up_in_the_list_at_once(gateway_url, http, make_event):
    async with http.get(f"{gateway_url}/api/v1/events?per_page=1") as r:
        before = (await r.json())["meta"]["total"]
    event = await make_event([("VIP", 5)], shows=1)
    async with http.get(f"{gateway_url}/api/v1/events?per_page=1") as r:
        body = await r.json()
    assert body["meta"]["total"] == before + 1
    assert body["data"][0]["id"] == event.event_id  # newest first
