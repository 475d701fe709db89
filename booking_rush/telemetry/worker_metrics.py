"""The workers' own metrics: reservations made and refused (spec §9.2), live holds and seats per
zone, and the waiting room's admissions (the admitter's)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RESERVATIONS = Counter("booking_reservations_total", "Seats reservations made", ["event_id"])
RESERVATION_FAILURES = Counter(
    "booking_reservation_failures", "Reservations refused, by reason", ["event_id", "reason"]
)
ACTIVE_RESERVATIONS = Gauge(
    "active_reservations",
    "Holds keeping seats out of sale and not yet sold (reserved or paying)",
    ["event_id"],
    multiprocess_mode="livemax",
)

# Seats per zone (the Low Stock alert: available below a tenth of the total)
ZONE_AVAILABLE = Gauge(
    "zone_seats_available",
    "Seats still on sale in a zone",
    ["event_id", "show_id", "zone_id"],
    multiprocess_mode="livemax",
)
ZONE_TOTAL = Gauge(
    "zone_seats_total", "Seats of a zone", ["event_id", "show_id", "zone_id"], multiprocess_mode="livemax"
)

# The waiting room
QUEUE_DEPTH = Gauge(
    "waiting_room_queue_depth",
    "People in line (and in the pre-queue)",
    ["event_id"],
    multiprocess_mode="livemax",
)
ROOM_ACTIVE = Gauge(
    "waiting_room_active", "Admitted people still active", ["event_id"], multiprocess_mode="livemax"
)
ADMITTED = Counter("waiting_room_admitted", "People let in", ["event_id"])
TURN_NOTICES = Counter(
    "waiting_room_turn_notices",
    "Notices to people called while away (kind: called, missed) by outcome (sent, gone, refused, failed)",
    ["kind", "result"],
)
WAIT_SECONDS = Histogram(
    "waiting_room_wait_seconds",
    "Time in line, from taking a place to being let in",
    ["event_id"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200),
)
ADMISSION_RATE = Gauge(
    "waiting_room_admission_rate_per_minute",
    "Admissions over the last minute",
    ["event_id"],
    multiprocess_mode="livemax",
)

# A worker's roles (workers/supervision.py): each restart after a failure.
ROLE_RESTARTS = Counter("worker_role_restarts", "Worker roles started again after failing", ["role"])
