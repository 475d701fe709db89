"""Concurrent reserves for one show share Kafka records; every command still arrives once."""

from __future__ import annotations

import asyncio

from tests.support import gateway_settings, read_topic, reserve, running_gateway


async def test_one_record_per_show_per_loop_iteration(
    schema, new_topics, jwt_secret, make_event, make_users, token_for, http
):
    topics = await new_topics("batch")  # no worker reads it: everything produced stays
    event = await make_event([("VIP", 100)], shows=2)
    users = await make_users(60)
    shows = list(event.shows)
    settings = gateway_settings(schema, topics, jwt_secret, reply_timeout_s=0.2)
    async with running_gateway(settings) as url:
        answers = await asyncio.gather(
            *(
                reserve(
                    http,
                    url,
                    token_for(u),
                    {
                        "event_id": event.event_id,
                        "show_id": shows[i % 2],
                        "zone_id": event.shows[shows[i % 2]]["VIP"],
                        "quantity": 1,
                    },
                )
                for i, u in enumerate(users)
            )
        )
    assert {status for status, _ in answers} == {202}
    request_ids = {a["data"]["request_id"] for _, a in answers}

    records = await read_topic(schema.kafka_bootstrap, topics.reservations, lambda v: True)
    commands = [c for r in records for c in (r if isinstance(r, list) else [r])]
    assert sorted(c["request_id"] for c in commands) == sorted(request_ids)  # each exactly once
    assert len(records) < len(commands)  # batched
    for record in records:  # a record holds one show's commands (the partition key)
        assert len({c["show_id"] for c in record}) == 1
