"""Event categories, per tenant (spec §2.1.2, §2.3): everyone lists a storefront's (or every
storefront's, by slug); a tenant's admins add to their own; a new tenant starts with the spec's
three (a trigger, migrations/014_categories_per_tenant.sql)."""

from __future__ import annotations

import re

from aiohttp import web

from gateway import appkeys, errors, tenants, text
from gateway.audit_trail import audit
from gateway.auth import current_principal
from gateway.params import text_query
from gateway.payloads import read_json_object
from gateway.responses import ok

_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


async def list_categories(request: web.Request) -> web.Response:
    """`?tenant=<slug>`: that storefront's categories; without it, every storefront's by slug
    (what the all-storefronts events list filters by), each with no id of its own."""
    pool = request.app[appkeys.PG_POOL]
    tenant = text_query(request, "tenant")
    if tenant is None:
        rows = await pool.fetch(
            "SELECT name, slug FROM (SELECT DISTINCT ON (slug) slug, name FROM categories "
            "ORDER BY slug, created_at) first_named ORDER BY name, slug"
        )
        return ok([{"id": None, "name": r["name"], "slug": r["slug"]} for r in rows])
    tenant_id = await tenants.tenant_id_by_slug(pool, tenant)
    if tenant_id is None:
        raise errors.NotFound("no such storefront")
    rows = await pool.fetch(
        "SELECT id, name, slug FROM categories WHERE tenant_id = $1 ORDER BY name", tenant_id
    )
    return ok([{"id": str(r["id"]), "name": r["name"], "slug": r["slug"]} for r in rows])


async def create_category(request: web.Request) -> web.Response:
    principal = current_principal(request)
    if principal.role != "admin":
        raise errors.Forbidden("only admins add categories")
    body = await read_json_object(request)
    name, slug = body.get("name"), body.get("slug")
    if not isinstance(name, str) or len(name) > 100 or not text.visible(name):
        raise errors.ValidationError("invalid name", details={"name": "1..100 characters"})
    if not isinstance(slug, str) or len(slug) > 100 or not _SLUG.fullmatch(slug):
        raise errors.ValidationError("invalid slug", details={"slug": "lower-case words joined by '-'"})
    row = await request.app[appkeys.PG_POOL].fetchrow(
        "INSERT INTO categories (tenant_id, name, slug) VALUES ($1, $2, $3) ON CONFLICT (tenant_id, slug) "
        "DO NOTHING RETURNING id, name, slug",
        principal.tenant_id,
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
