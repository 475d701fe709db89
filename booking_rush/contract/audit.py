"""An audited action (spec §8.5), as the gateway and the persistence consumer record it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class AuditEntry:
    """One audited action. `at` None means now (the database's clock)."""

    action: str
    entity_type: str
    entity_id: str
    tenant_id: str | None = None
    actor_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None
