"""When no worker answers in time the client gets 202 and polls its request to the final answer."""

from __future__ import annotations

import asyncio

from booking_rush.contract import messages
from tests.support import (
    WorkerProcess,
    final_answer,
    gateway_settings,
    reserve,
    running_gateway,
    worker_env,
)


async def test_202_then_poll_until_the_worker_answers(
    schema, new_topics, jwt_secret, make_event, make_users, token_for, http
):
    topics = await new_topics("poll")
    event = await make_event([("VIP", 5)], shows=1)
    owner, stranger = await make_users(2)
    show = next(iter(event.shows))
    body = {"event_id": event.event_id, "show_id": show, "zone_id": event.shows[show]["VIP"], "quantity": 2}
    settings = gateway_settings(schema, topics, jwt_secret, reply_timeout_s=0.3)
    async with running_gateway(settings) as url:
        status, answer = await reserve(http, url, token_for(owner), body)
        assert status == 202
        request_id = answer["data"]["request_id"]
        assert answer["data"]["poll"] == f"/api/v1/bookings/requests/{request_id}"
        poll = f"{url}{answer['data']['poll']}"

        async def get(token):
            async with http.get(poll, headers={"Authorization": f"Bearer {token}"}) as r:
                return r.status, await r.json()

        assert await get(token_for(owner)) == (
            202,
            {"success": True, "data": {"request_id": request_id, "status": "pending"}},
        )

        worker = await WorkerProcess(
            worker_env(schema, topics, f"{topics.prefix}w", BR_WORKER_ROLES="commands")
        ).start()
        try:
            # The worker answers on the (now idle) reply channel and stores the result.
            status, final = await final_answer(http, url, token_for(owner), status, answer)
        finally:
            await worker.stop()
        assert status == 201
        assert final["data"]["status"] == "reserved" and final["data"]["quantity"] == 2
        assert (await get(token_for(stranger)))[0] == 404  # not the owner: no such request
        again_status, again = await get(token_for(owner))
        assert (again_status, again["data"]["booking_id"]) == (200, final["data"]["booking_id"])


async def test_a_burst_of_polls_waits_for_connections_instead_of_failing(
    schema, new_topics, jwt_secret, make_event, make_users, token_for, http
):
    topics = await new_topics("pollburst")
    event = await make_event([("VIP", 5)], shows=1)
    (user,) = await make_users(1)
    token = token_for(user)
    settings = gateway_settings(
        schema, topics, jwt_secret, redis_max_connections=4, rate_limits="general=1000000/1000000"
    )
    unknown = messages.new_request_id(event.event_id)

    async def poll() -> int:
        async with http.get(
            f"{url}/api/v1/bookings/requests/{unknown}", headers={"Authorization": f"Bearer {token}"}
        ) as r:
            return r.status

    async with running_gateway(settings) as url:
        statuses = await asyncio.gather(*(poll() for _ in range(300)))
    assert set(statuses) == {202}
