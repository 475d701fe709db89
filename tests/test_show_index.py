"""The gateway's per-process catalog: loaded from PostgreSQL, reloaded on change or on a miss."""

from __future__ import annotations

import uuid

from gateway.show_index import ShowIndex


class CountingCatalog(ShowIndex):
    loads = 0

    async def load(self, pool) -> None:
        self.loads += 1
        await super().load(pool)


async def test_a_show_published_a_moment_ago_is_found(pg, make_event):
    catalog = CountingCatalog(miss_reload_interval_s=0)
    await catalog.load(pg)
    event = await make_event([("VIP", 5)], shows=1)
    show_id = next(iter(event.shows))
    show = catalog.show(show_id) or await catalog.show_after_reload(show_id, pg)
    assert show is not None and show.event_id == event.event_id
    assert set(show.zones) == set(event.shows[show_id].values())
    assert show.max_per_user == 4 and show.event_status == "published"


async def test_unknown_ids_reload_at_most_once_per_interval(pg):
    catalog = CountingCatalog(miss_reload_interval_s=60)
    await catalog.load(pg)
    for _ in range(5):
        assert await catalog.show_after_reload(str(uuid.uuid4()), pg) is None
    assert catalog.loads == 1  # the start-up load only: the interval has not passed


async def test_price_and_limit_come_from_the_database(pg, make_event):
    event = await make_event([("VIP", 5)], shows=1, max_per_user=2, price="1234.50")
    catalog = ShowIndex()
    await catalog.load(pg)
    show = catalog.show(next(iter(event.shows)))
    assert show.max_per_user == 2
    assert [z.price_cents for z in show.zones.values()] == [123450]


async def test_a_show_created_within_the_interval_is_found_by_the_generation(pg, make_event):
    """Before its change notice arrives, and long before the interval passes: the catalog's
    generation moved, so the miss reloads."""
    catalog = CountingCatalog(miss_reload_interval_s=60)
    await catalog.load(pg)
    event = await make_event([("VIP", 5)], shows=1)
    show = await catalog.show_after_reload(next(iter(event.shows)), pg)
    assert show is not None and show.event_id == event.event_id
    assert catalog.loads == 2
    assert await catalog.show_after_reload(str(uuid.uuid4()), pg) is None
    assert catalog.loads == 2  # nothing changed since: the miss stands
