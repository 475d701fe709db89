"""Prices as every process shows them: promo codes' form, and a booking's price breakdown
(lua/_pricing.lua decides it; the API, the pages and the mails show it the same way).

Money is kept in integer minor units everywhere and written as the API has always written it:
"1234.50", with the currency beside it.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

# What a promo code may be: letters, digits and dashes. Codes are matched case-insensitively
# (kept upper case); one chosen by an organizer must be at least MIN_CODE_LENGTH long, so a
# code is not guessed in the few attempts the gateway allows (gateway/promo_guard.py).
CODE_PATTERN = re.compile(r"[A-Z0-9-]{1,32}")
MIN_CODE_LENGTH = 8
_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read out and typed without doubt


def normal_code(raw: str) -> str:
    """A code as typed (any case, surrounding spaces) in its stored form."""
    return raw.strip().upper()


def new_code() -> str:
    """A fresh 12-character code (60 random bits) for an organizer who names none."""
    raw = int.from_bytes(os.urandom(8), "big")
    return "".join(_ALPHABET[(raw >> (5 * i)) & 31] for i in range(12))


def promo_definition(
    code: str,
    kind: str,
    value: int,
    *,
    name: str = "",
    starts_at: int = 0,
    ends_at: int = 0,
    show_id: str = "",
    zone_id: str = "",
    max_uses: int = 0,
    per_user: int = 0,
    min_quantity: int = 1,
    status: str = "active",
) -> dict[str, Any]:
    """A promo code as the sale Redis keeps it (lua/_pricing.lua): `value` a percentage or minor
    units by `kind`; times in epoch ms and limits 0 when there are none; '' for any show or zone."""
    return {
        "code": code,
        "name": name or code,
        "kind": kind,
        "value": value,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "show_id": show_id,
        "zone_id": zone_id,
        "max_uses": max_uses,
        "per_user": per_user,
        "min_quantity": min_quantity,
        "status": status,
    }


def voucher_code(booking_id: str) -> str:
    """The compensation voucher a cancelled event's refunded booking gets: derived from the
    booking id (so issuing it again names the same voucher), unguessable without it (the id
    carries 128 random bits)."""
    digest = hashlib.sha256(b"voucher:" + booking_id.encode()).digest()
    raw = int.from_bytes(digest[:8], "big")
    return "V-" + "".join(_ALPHABET[(raw >> (5 * i)) & 31] for i in range(12))


def money(cents: int) -> str:
    """A price as the API writes it: "123.45"."""
    return f"{cents / 100:.2f}"


def _list(value: Any) -> list:
    # Redis's cjson writes an empty table as {}: an empty list of discounts arrives as a dict.
    return value if isinstance(value, list) else []


def breakdown_view(pricing: dict[str, Any] | None, quantity: int, total_cents: int, currency: str) -> dict:
    """A booking's price as the API shows it. A booking made before prices had rules has no
    breakdown kept: its one line is its quantity at the price it paid."""
    if not pricing:
        unit = total_cents // quantity if quantity else 0
        pricing = {
            "currency": currency,
            "list_price_cents": unit,
            "lines": [
                {"kind": "list", "quantity": quantity, "unit_cents": unit, "amount_cents": total_cents}
            ],
            "gross_cents": total_cents,
            "discounts": [],
            "total_cents": total_cents,
        }
    discounts = []
    for d in _list(pricing.get("discounts")):
        shown = {"kind": d["kind"], "name": d.get("name") or "", "amount": money(d["amount_cents"])}
        if d.get("code"):
            shown["code"] = d["code"]
        if d.get("percent") is not None:
            shown["percent"] = d["percent"]
        discounts.append(shown)
    return {
        "currency": pricing.get("currency") or currency,
        "list_price": money(pricing["list_price_cents"]),
        "lines": [
            {
                "kind": line["kind"],
                "quantity": line["quantity"],
                "unit_price": money(line["unit_cents"]),
                "amount": money(line["amount_cents"]),
            }
            for line in _list(pricing.get("lines"))
        ],
        "subtotal": money(pricing["gross_cents"]),
        "discounts": discounts,
        "total": money(pricing["total_cents"]),
    }


def discount_label(discount: dict[str, Any], lines: list[dict[str, Any]]) -> str:
    """How a discount is named to a buyer (the pages say the same: gateway/static/price-breakdown.js)."""
    if discount["kind"] == "early_bird":
        early = next((line for line in lines if line["kind"] == "early_bird"), None)
        return f"Early bird ({early['quantity']} at {early['unit_price']})" if early else "Early bird"
    if discount["kind"] == "voucher":
        return f"Voucher {discount.get('code', '')}"
    if discount["kind"] == "promo":
        percent = f" ({discount['percent']}%)" if discount.get("percent") is not None else ""
        return f"Code {discount.get('code', '')}{percent}"
    return discount["name"] or "Bundle"


def breakdown_text(view: dict[str, Any], quantity: int) -> str:
    """A breakdown_view as the lines of a mail: the seats at the list price, each discount, the total."""
    rows = [(f"{quantity} x {view['list_price']} (list price)", view["subtotal"])]
    rows += [(discount_label(d, view["lines"]), f"-{d['amount']}") for d in view["discounts"]]
    rows.append(("Total", f"{view['total']} {view['currency']}"))
    width = max(len(label) for label, _ in rows) + 2
    return "\n".join(f"  {label:<{width}}{amount:>16}" for label, amount in rows)
