"""Payment methods, and the detail field each carries (the gateway checks it, the provider
charges it)."""

from __future__ import annotations

METHODS = ("card", "bank_transfer", "e_wallet")
DETAIL_FIELD = {"card": "card_number", "bank_transfer": "account", "e_wallet": "wallet_id"}
