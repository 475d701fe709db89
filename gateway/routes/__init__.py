"""The HTTP routes, one module per resource, each with its `add_routes`. `add_all` registers
every one, in this order (aiohttp matches a path against the routes in the order they came)."""

from __future__ import annotations

from aiohttp import web

from gateway.routes import (
    auth,
    bookings,
    categories,
    events,
    health,
    openapi,
    pages,
    payments,
    pricing,
    queue,
    rooms,
    system,
    users,
)

RESOURCES = (
    health,
    openapi,
    auth,
    system,
    events,
    users,
    categories,
    pages,
    queue,
    rooms,
    bookings,
    payments,
    pricing,
)


def add_all(app: web.Application) -> None:
    for resource in RESOURCES:
        resource.add_routes(app)
