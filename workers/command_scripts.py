"""What each command runs: its Lua script, KEYS and ARGV, in one table. Each script's header
(lua/*.lua) documents its KEYS, ARGV and answer; this is where a command's fields meet them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from booking_rush.contract import messages
from lua import SaleScripts, keys, queue_script
from workers.inventory import load_call
from workers.settings import WorkerSettings

Command = dict[str, Any]


class ScriptCall(NamedTuple):
    script: str  # a field of lua.SaleScripts
    # (command, now in ms, settings) -> (KEYS, ARGV)
    call: Callable[[Command, int, WorkerSettings], tuple[list[str], list]]


def _reserve(cmd: Command, now: int, s: WorkerSettings) -> tuple[list[str], list]:
    ev, scope = cmd["event_id"], messages.idempotency_scope(cmd.get("idempotency_key"), cmd["request_id"])
    return (
        keys.reserve_keys(ev, cmd["user_id"], scope, cmd["show_id"], cmd["zone_id"], cmd["booking_id"]),
        [
            cmd["body_hash"],
            now,
            cmd["deadline_ms"],
            cmd["quantity"],
            cmd["booking_id"],
            cmd["user_id"],
            cmd["show_id"],
            cmd["zone_id"],
            s.hold_ms,
            s.idempotency_ttl_s,
            cmd["request_id"],
            s.default_max_per_user,
            scope,
            s.redelivery_window_s,
            cmd.get("promo_code") or "",
            cmd.get("currency") or "",
        ],
    )


def _hold_keys(cmd: Command) -> list[str]:
    return keys.hold_keys(cmd["event_id"], cmd["booking_id"], cmd["user_id"], cmd["show_id"], cmd["zone_id"])


def _expire(cmd: Command, now: int, s: WorkerSettings) -> tuple[list[str], list]:
    # The sweeper judged the hold due as of its clock; the script re-checks.
    at = cmd.get("as_of_ms", now)
    return _hold_keys(cmd), [cmd["booking_id"], at, cmd["user_id"], cmd["show_id"], cmd["zone_id"]]


def _cancel(cmd: Command, now: int, s: WorkerSettings) -> tuple[list[str], list]:
    args = [cmd["booking_id"], now, cmd["user_id"], cmd["show_id"], cmd["zone_id"], cmd.get("reason") or ""]
    return _hold_keys(cmd), args


def _begin_payment(cmd: Command, now: int, s: WorkerSettings) -> tuple[list[str], list]:
    ev = cmd["event_id"]
    return (
        [
            keys.hold(ev, cmd["booking_id"]),
            keys.payment(ev, cmd["payment_id"]),
            keys.expiry_index(ev),
            keys.event_meta(ev),
        ],
        [
            cmd["booking_id"],
            cmd["payment_id"],
            cmd["user_id"],
            cmd["method"],
            cmd["masked"],
            now,
            s.payment_hold_ms,
        ],
    )


def _payment_keys(cmd: Command) -> list[str]:
    ids = ("event_id", "booking_id", "payment_id", "user_id", "show_id", "zone_id")
    return keys.payment_keys(*(cmd[i] for i in ids))


def _settle_payment(cmd: Command, now: int, s: WorkerSettings) -> tuple[list[str], list]:
    return (
        _payment_keys(cmd),
        [
            cmd["booking_id"],
            cmd["payment_id"],
            cmd["outcome"],
            now,
            cmd["provider_ref"],
            cmd["reason"],
            cmd.get("ticket_code", ""),
        ],
    )


def _refund(cmd: Command, now: int, s: WorkerSettings) -> tuple[list[str], list]:
    return (
        _payment_keys(cmd),
        [
            cmd["booking_id"],
            cmd["payment_id"],
            cmd["step"],
            now,
            cmd["user_id"],
            cmd["percent"],
            cmd["amount_cents"],
            cmd["provider_ref"],
            cmd.get("reason") or "",
        ],
    )


def _adjust_zone(cmd: Command, now: int, s: WorkerSettings) -> tuple[list[str], list]:
    ev = cmd["event_id"]
    record = keys.idempotency(ev, cmd["user_id"], messages.idempotency_scope(None, cmd["request_id"]))
    return [record, keys.zone(ev, cmd["show_id"], cmd["zone_id"])], [cmd["total"], s.idempotency_ttl_s]


def _sale_state(cmd: Command, now: int, s: WorkerSettings) -> tuple[list[str], list]:
    ev = cmd["event_id"]
    return [keys.event_meta(ev), keys.room(ev, "config")], [cmd["state"], cmd["reason"], now]


def _set_pricing(cmd: Command, now: int, s: WorkerSettings) -> tuple[list[str], list]:
    ev, change = cmd["event_id"], cmd["change"]
    record = keys.idempotency(ev, cmd["user_id"], messages.idempotency_scope(None, cmd["request_id"]))
    zone = keys.zone(ev, change["show_id"], change["zone_id"]) if cmd["what"] == "early_bird" else None
    return keys.pricing_keys(ev, record, zone), [
        cmd["what"],
        messages.encode(change),
        now,
        s.idempotency_ttl_s,
    ]


def _voucher(cmd: Command, now: int, s: WorkerSettings) -> tuple[list[str], list]:
    return [keys.voucher(cmd["tenant_id"], cmd["code"])], [
        cmd["op"],
        now,
        cmd["user_id"],
        cmd["booking_id"],
        cmd["amount_cents"] if cmd["op"] == "issue" else cmd["claim_until"],
        cmd["currency"],
        cmd["tenant_id"],
    ]


def _apply_voucher(cmd: Command, now: int, s: WorkerSettings) -> tuple[list[str], list]:
    return [keys.hold(cmd["event_id"], cmd["booking_id"])], [
        cmd["booking_id"],
        cmd["user_id"],
        cmd["code"],
        cmd["amount_cents"],
        now,
        cmd["tenant_id"],
    ]


def _load_inventory(cmd: Command, now: int, s: WorkerSettings) -> tuple[list[str], list]:
    return load_call(cmd, s.idempotency_ttl_s)


SCRIPT_OF: dict[str, ScriptCall] = {
    messages.RESERVE: ScriptCall("reserve_seats", _reserve),
    messages.EXPIRE: ScriptCall("expire_hold", _expire),
    messages.CANCEL: ScriptCall("cancel_hold", _cancel),
    messages.BEGIN_PAYMENT: ScriptCall("begin_payment", _begin_payment),
    messages.SETTLE_PAYMENT: ScriptCall("settle_payment", _settle_payment),
    messages.REFUND: ScriptCall("refund_payment", _refund),
    messages.ADJUST_ZONE: ScriptCall("adjust_zone", _adjust_zone),
    messages.LOAD_INVENTORY: ScriptCall("load_inventory", _load_inventory),
    messages.SET_SALE_STATE: ScriptCall("sale_state", _sale_state),
    messages.SET_PRICING: ScriptCall("set_pricing", _set_pricing),
    messages.VOUCHER: ScriptCall("voucher", _voucher),
    messages.APPLY_VOUCHER: ScriptCall("apply_voucher", _apply_voucher),
}


def queue_command(pipe, scripts: SaleScripts, cmd: Command, now: int, settings: WorkerSettings) -> None:
    """Queue `cmd`'s script on a pipeline (run it with lua.execute_scripted)."""
    script, call = SCRIPT_OF[cmd["type"]]
    script_keys, args = call(cmd, now, settings)
    queue_script(pipe, getattr(scripts, script), script_keys, args)
