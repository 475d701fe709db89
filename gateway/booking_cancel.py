"""`POST /api/v1/bookings/{booking_id}/cancel`: the owner (or an admin of the event's tenant)
gives a reservation back.

Like every change of a hold, it is a command through Kafka applied by one Lua script
(lua/cancel_hold.lua), which returns the seats and lowers the user's count exactly once; the
worker emits `booking.cancelled` and answers only after Kafka has it.
"""

from __future__ import annotations

from aiohttp import web

from booking_rush.contract import messages
from gateway import appkeys, errors
from gateway.auth import current_principal
from gateway.booking_reads import may_manage
from gateway.bookings import render_result
from gateway.dispatch import dispatch, pending_answer, reply_channel_ready
from gateway.params import PUBLIC_ID
from lua import keys


async def cancel(request: web.Request) -> web.Response:
    app = request.app
    booking_id = request.match_info["booking_id"]
    event_id = messages.event_of(booking_id)
    if event_id is None:
        raise errors.NotFound("no such booking")
    show_id, zone_id, owner = await app[appkeys.SALE_REDIS].hmget(
        keys.hold(event_id, booking_id), "show_id", "zone_id", "user_id"
    )
    if owner is None or not await may_manage(request, event_id, owner.decode()):
        raise errors.NotFound("no such booking")  # someone else's does not exist for you
    reply_channel_ready(app)
    command = messages.cancel_command(
        request_id=messages.new_public_id(event_id),
        event_id=event_id,
        booking_id=booking_id,
        user_id=owner.decode(),  # an admin cancels on the owner's behalf: the owner's count drops
        show_id=show_id.decode(),
        zone_id=zone_id.decode(),
        reply_to=app[appkeys.GATEWAY_ID],
    )
    command["requester"] = current_principal(request).user_id
    reply = await dispatch(app, command["show_id"], command)
    if reply is None:
        return pending_answer(command["request_id"])
    return render_result(reply["result"], created_status=200)


def add_routes(app: web.Application) -> None:
    app.router.add_post(f"/api/v1/bookings/{{booking_id:{PUBLIC_ID}}}/cancel", cancel, name="cancel_booking")
