"""Admin endpoints: the users of the admin's own tenant — list, disable or enable, change role."""

from __future__ import annotations

from aiohttp import web

from gateway import appkeys, errors, event_input, tenants
from gateway.access import admin_of
from gateway.audit_trail import audit
from gateway.event_store import iso
from gateway.params import int_query, path_uuid
from gateway.payloads import read_json_object
from gateway.responses import ok

ROLES = ("user", "organizer", "admin")

USER_COLUMNS = "id, tenant_id, email, full_name, role, disabled_at, created_at"


def _user_json(row) -> dict:
    return {
        "id": str(row["id"]),
        "tenant_id": str(row["tenant_id"]),
        "email": row["email"],
        "full_name": row["full_name"],
        "role": row["role"],
        "disabled": row["disabled_at"] is not None,
        "created_at": iso(row["created_at"]),
    }


async def list_users(request: web.Request) -> web.Response:
    admin = admin_of(request)
    page = int_query(request, "page", 1, 1, 100_000)
    per_page = int_query(request, "per_page", 20, 1, 100)
    pool = request.app[appkeys.PG_POOL]
    total = await pool.fetchval("SELECT count(*) FROM users WHERE tenant_id = $1", admin.tenant_id)
    rows = await pool.fetch(
        f"SELECT {USER_COLUMNS} FROM users WHERE tenant_id = $1 ORDER BY created_at, id LIMIT $2 OFFSET $3",
        admin.tenant_id,
        per_page,
        (page - 1) * per_page,
    )
    return ok([_user_json(r) for r in rows], meta={"page": page, "per_page": per_page, "total": total})


async def update_user(request: web.Request) -> web.Response:
    """`{role?, disabled?}`. Disabling also revokes the user's refresh tokens (sessions end);
    disabling or giving a role ends the user's access tokens, in every gateway process (the
    browser then refreshes into a token with the new role, or is refused)."""
    admin = admin_of(request)
    user_id = path_uuid(request, "user_id")
    body = await read_json_object(request)
    role, disabled = body.get("role"), body.get("disabled")
    if role is not None and role not in ROLES:
        raise errors.ValidationError("invalid role", details={"role": list(ROLES)})
    if disabled is not None and not isinstance(disabled, bool):
        raise errors.ValidationError("invalid disabled", details={"disabled": "true or false"})
    if user_id == admin.user_id and (disabled or (role is not None and role != "admin")):
        raise errors.Conflict("admins cannot disable or demote themselves")
    pool = request.app[appkeys.PG_POOL]
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "UPDATE users SET role = coalesce($3, role), "
            "disabled_at = CASE WHEN $4::bool IS NULL THEN disabled_at "
            "WHEN $4 THEN coalesce(disabled_at, now()) ELSE NULL END, updated_at = now() "
            f"WHERE id = $1 AND tenant_id = $2 RETURNING {USER_COLUMNS}",
            user_id,
            admin.tenant_id,
            role,
            disabled,
        )
        if row is None:
            raise errors.NotFound("no such user")  # another tenant's user does not exist for you
        if disabled:
            await conn.execute(
                "UPDATE refresh_tokens SET revoked_at = now(), updated_at = now() "
                "WHERE user_id = $1 AND revoked_at IS NULL",
                user_id,
            )
    if disabled or role is not None:
        # After the commit: a token issued before it is one the database would have granted.
        await request.app[appkeys.REVOCATIONS].revoke("user", user_id)
    changes = {name: value for name, value in (("role", role), ("disabled", disabled)) if value is not None}
    await audit(request, "admin.user_updated", "user", user_id, **changes)
    return ok(_user_json(row))


async def tenant_settings(request: web.Request) -> web.Response:
    """GET /api/v1/admin/tenant: the admin's own tenant's settings (the compensation a cancelled
    event's buyers get, as a percentage of what they paid, issued as a voucher)."""
    admin = admin_of(request)
    percent = await tenants.compensation_percent(request.app[appkeys.PG_POOL], admin.tenant_id)
    return ok({"tenant_id": admin.tenant_id, tenants.COMPENSATION: percent})


async def change_tenant_settings(request: web.Request) -> web.Response:
    """PUT /api/v1/admin/tenant {cancellation_compensation_percent: 0..100}."""
    admin = admin_of(request)
    body = await read_json_object(request)
    percent = event_input.int_field(body, tenants.COMPENSATION, 0, 100, hint="a whole percentage, 0..100")
    await tenants.set_compensation_percent(request.app[appkeys.PG_POOL], admin.tenant_id, percent)
    await audit(
        request, "tenant.settings_changed", "tenant", admin.tenant_id, **{tenants.COMPENSATION: percent}
    )
    return ok({"tenant_id": admin.tenant_id, tenants.COMPENSATION: percent})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/admin/tenant", tenant_settings, name="admin_tenant_settings")
    app.router.add_put("/api/v1/admin/tenant", change_tenant_settings, name="admin_change_tenant_settings")
    app.router.add_get("/api/v1/admin/users", list_users, name="admin_list_users")
    app.router.add_put("/api/v1/admin/users/{user_id}", update_user, name="admin_update_user")
