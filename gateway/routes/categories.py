"""Event categories: everyone lists them; admins add them (spec §2.1.2)."""

from __future__ import annotations

import re

from aiohttp import web

from gateway import appkeys, errors, text
from gateway.audit_trail import audit
from gateway.auth import current_principal
from gateway.payloads import read_json_object
from gateway.responses import ok

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


async def list_categories(request: web.Request) -> web.Response:
    rows = await request.app[appkeys.PG_POOL].fetch("SELECT id, name, slug FROM categories ORDER BY name")
    return ok([{"id": str(r["id"]), "name": r["name"], "slug": r["slug"]} for r in rows])


async def create_category(request: web.Request) -> web.Response:
    if current_principal(request).role != "admin":
        raise errors.Forbidden("only admins add categories")
    body = await read_json_object(request)
    name, slug = body.get("name"), body.get("slug")
    if not isinstance(name, str) or len(name) > 100 or not text.visible(name):
        raise errors.ValidationError("invalid name", details={"name": "1..100 characters"})
    if not isinstance(slug, str) or len(slug) > 100 or not _SLUG.fullmatch(slug):
        raise errors.ValidationError("invalid slug", details={"slug": "lower-case words joined by '-'"})
    row = await request.app[appkeys.PG_POOL].fetchrow(
        "INSERT INTO categories (name, slug) VALUES ($1, $2) ON CONFLICT (slug) DO NOTHING "
        "RETURNING id, name, slug",
        text.trimmed(name),
        slug,
    )
    if row is None:
        raise errors.Conflict("a category with this slug exists")
    await audit(request, "category.created", "category", str(row["id"]), name=row["name"], slug=row["slug"])
    return ok({"id": str(row["id"]), "name": row["name"], "slug": row["slug"]}, status=201)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/categories", list_categories, name="list_categories")
    app.router.add_post("/api/v1/categories", create_category, name="create_category")
