"""A flash-sale crowd for locust: sign in, queue, get admitted, reserve, pay (or not), confirm.

    .venv/bin/locust -f ops/locustfile.py --headless -u 200 -r 50 -t 60s --host http://127.0.0.1:8080
    .venv/bin/python -m ops.loadtest --users 200 --spawn-rate 50 --run-time 60s   # the same, summarised

Each locust user plays one seeded buyer's journey at a time, then comes back as the next buyer:

  POST /auth/login -> POST /queue/join -> follow the place (GET /queue/status at the answer's
  refresh_after_seconds, or the SSE stream /queue/stream) until admitted with a pass ->
  POST /bookings/reserve with X-Queue-Pass (a 202 is polled at its `poll` path) -> then one of:
  pay by card (POST /payments, poll GET /payments/{id}) and POST /bookings/{id}/confirm; pay with
  a card the fake provider declines (…0002); cancel (POST /bookings/{id}/cancel); or walk away
  (the hold lapses). Think times (`between`) separate the steps a person takes.

Answers, in locust's statistics (requests are named by route: "/api/v1/payments/[id]"):
- expected refusals are successes recorded under their own name, the route plus
  "[status CODE]": 409 INSUFFICIENT_STOCK / MAX_PER_USER_EXCEEDED on reserve (another zone, one
  seat, then sold out), 429 RATE_LIMITED (the user waits Retry-After and asks again), 409
  PAYMENT_IN_PROGRESS on confirm (asked again), 410 RESERVATION_EXPIRED on pay and 409
  INVALID_STATUS_TRANSITION on cancel (the hold ran out first), 401 (signs in
  again, once), 403 QUEUE_PASS_REQUIRED after an "open" room engaged (back to the queue);
- every other answer that is not 2xx is a failure with "status CODE: message", as are a
  payment that never settles and a payment whose outcome is not the card's (a good card
  declined, a declining card charged).

The booking funnel (journeys, signed in, joined, admitted, reserved, paid, declined, abandoned,
sold out, ...) and the waits people see (queue, reserve, payment, journey) are counted here,
not by locust; with LOAD_REPORT set they are written to that JSON file every 2 s and at the end
(ops/loadtest.py reads it). Settings (environment):

  LOAD_EVENT_ID / LOAD_EVENT_TITLE  the event: its id; or the newest published event of the
                                    buyers' organisation with seats left (whose title contains
                                    LOAD_EVENT_TITLE, if set)
  LOAD_TENANT, LOAD_EMAIL, LOAD_PASSWORD, LOAD_BUYERS, LOAD_FIRST_BUYER
                                    seeded buyers: LOAD_EMAIL.format(i) for i in FIRST..FIRST+BUYERS-1
                                    (default: ops/seed.py's demo, 100 buyers; the demo seeds 5000)
  LOAD_THINK_MIN / LOAD_THINK_MAX   think time between steps, seconds (1 / 5)
  LOAD_PAY_SHARE                    share of buyers with a booking who pay (0.8; the rest abandon)
  LOAD_DECLINE_SHARE                share of payers whose card is declined (0.1)
  LOAD_CANCEL_SHARE                 share of abandoners who cancel; the others walk away (0.5)
  LOAD_SSE_SHARE                    share of buyers who follow the SSE stream rather than poll (0.5)
  LOAD_MAX_QUANTITY                 seats asked for, 1..this (2, capped by the event's limit)
  LOAD_MAX_WAIT_S                   longest a buyer stays in line before leaving (900)
  LOAD_PAYMENT_POLL_S               how often a payment's status is asked (0.5)
  LOAD_REPORT                       where to write the funnel (JSON); unset: only logged at the end
  LOAD_PROCESSES                    locust --processes N: set it to N too (buyers are shared out)

Shares are kept exact, not drawn: the n-th buyer at checkout takes the outcome furthest behind
its share, so a short run still shows every outcome in proportion.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import gevent
from gevent.lock import Semaphore
from locust import HttpUser, between, events, task
from locust.exception import StopUser
from locust.runners import WorkerRunner

log = logging.getLogger("booking-rush")

# ops/seed.py's demo (tests/test_locustfile.py checks these against it).
DEMO_TENANT = "demo-live"
DEMO_PASSWORD = "demo-pass-2026"
DEMO_EMAIL = "buyer{:06d}@demo.test"

GOOD_CARD = {"card_number": "4242424242424242", "expiry": "12/39", "cvc": "123"}
DECLINED_CARD = {**GOOD_CARD, "card_number": "4000000000000002"}  # the fake provider declines it

WAITING_STATES = ("waiting", "prequeue", "paused")
MAX_RATE_LIMITED_RETRIES = 30
SAMPLES_KEPT = 200_000  # per wait kind, for the percentiles


def _env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def _number(name: str, default: float, low: float, high: float) -> float:
    raw = _env(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r}: not a number") from None
    if not low <= value <= high:
        raise SystemExit(f"{name}={raw}: must be within {low}..{high}")
    return value


@dataclass(frozen=True)
class Settings:
    event_id: str
    event_title: str
    tenant: str
    email: str
    password: str
    buyers: int
    first_buyer: int
    think_min: float
    think_max: float
    pay_share: float
    decline_share: float
    cancel_share: float
    sse_share: float
    max_quantity: int
    max_wait_s: float
    payment_poll_s: float
    report: str
    processes: int

    @classmethod
    def from_env(cls) -> Settings:
        think_min = _number("LOAD_THINK_MIN", 1, 0, 3600)
        think_max = _number("LOAD_THINK_MAX", 5, 0, 3600)
        if think_max < think_min:
            raise SystemExit(f"LOAD_THINK_MAX ({think_max}) is below LOAD_THINK_MIN ({think_min})")
        email = _env("LOAD_EMAIL", DEMO_EMAIL)
        if "{" not in email:
            raise SystemExit(f"LOAD_EMAIL={email!r}: needs a {{}} for the buyer's number")
        return cls(
            event_id=_env("LOAD_EVENT_ID", ""),
            event_title=_env("LOAD_EVENT_TITLE", ""),
            tenant=_env("LOAD_TENANT", DEMO_TENANT),
            email=email,
            password=_env("LOAD_PASSWORD", DEMO_PASSWORD),
            buyers=int(_number("LOAD_BUYERS", 100, 1, 10_000_000)),
            first_buyer=int(_number("LOAD_FIRST_BUYER", 0, 0, 10_000_000)),
            think_min=think_min,
            think_max=think_max,
            pay_share=_number("LOAD_PAY_SHARE", 0.8, 0, 1),
            decline_share=_number("LOAD_DECLINE_SHARE", 0.1, 0, 1),
            cancel_share=_number("LOAD_CANCEL_SHARE", 0.5, 0, 1),
            sse_share=_number("LOAD_SSE_SHARE", 0.5, 0, 1),
            max_quantity=int(_number("LOAD_MAX_QUANTITY", 2, 1, 100)),
            max_wait_s=_number("LOAD_MAX_WAIT_S", 900, 1, 86_400),
            payment_poll_s=_number("LOAD_PAYMENT_POLL_S", 0.5, 0.05, 60),
            report=_env("LOAD_REPORT", ""),
            processes=int(_number("LOAD_PROCESSES", 1, 1, 1024)),
        )


SETTINGS = Settings.from_env()


class Mix:
    """Outcomes in exact proportions: each pick is the outcome furthest behind its share."""

    def __init__(self, shares: dict[str, float]) -> None:
        self.shares = shares
        self.counts: Counter = Counter()
        self.picks = 0

    def pick(self) -> str:
        self.picks += 1
        choice = max(self.shares, key=lambda k: self.shares[k] * self.picks - self.counts[k])
        self.counts[choice] += 1
        return choice


CHECKOUT = Mix(
    {
        "pay": SETTINGS.pay_share * (1 - SETTINGS.decline_share),
        "declined card": SETTINGS.pay_share * SETTINGS.decline_share,
        "cancel": (1 - SETTINGS.pay_share) * SETTINGS.cancel_share,
        "walk away": (1 - SETTINGS.pay_share) * (1 - SETTINGS.cancel_share),
    }
)
LISTENING = Mix({"stream": SETTINGS.sse_share, "poll": 1 - SETTINGS.sse_share})


# --- what this process counted, reported to a master (locust --processes) or written out ---

FUNNEL: Counter = Counter()
WAITS: dict[str, list[float]] = defaultdict(list)
# Every request as locust records it, and what failed: exact at the end (locust's own CSV files
# are rewritten once a second, so they can miss the last second).
REQUESTS: Counter = Counter()  # "requests", "failures"
FAILURES: Counter = Counter()  # "METHOD name: error" -> occurrences
EXCEPTIONS: Counter = Counter()  # errors raised in this file's code (bugs, or answers it misread)
FUNNEL_ORDER = (
    "journeys",
    "signed in",
    "joined",
    "admitted",
    "reserved",
    "seats reserved",
    "paid",
    "declined",
    "abandoned",
    "sold out",
    "expired",
    "gave up waiting",
    "room closed",
    "errors",
)
RUNNING: dict[str, Any] = {}  # "environment"


def count(step: str, n: int = 1) -> None:
    FUNNEL[step] += n


def waited(kind: str, seconds: float) -> None:
    samples = WAITS[kind]
    if len(samples) < SAMPLES_KEPT:
        samples.append(seconds)


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report() -> dict[str, Any]:
    waits = {}
    for kind, samples in sorted(WAITS.items()):
        ordered = sorted(samples)
        if ordered:
            waits[kind] = {
                "count": len(ordered),
                **{f"p{int(q * 100)}": round(_percentile(ordered, q), 3) for q in (0.5, 0.95, 0.99)},
                "max": round(ordered[-1], 3),
            }
    funnel = {k: FUNNEL[k] for k in FUNNEL_ORDER if k in FUNNEL}
    funnel.update({k: v for k, v in sorted(FUNNEL.items()) if k not in funnel})
    environment = RUNNING.get("environment")
    return {
        "event": SALE.describe(),
        "users": environment.runner.user_count if environment and environment.runner else 0,
        "requests": REQUESTS["requests"],
        "failures": REQUESTS["failures"],
        "failure_kinds": dict(FAILURES.most_common()),
        "exceptions": dict(EXCEPTIONS.most_common()),
        "funnel": funnel,
        "waits": waits,
        "written_at": time.time(),
    }


_report_lock = threading.Lock()


def write_report() -> None:
    if not SETTINGS.report:
        return
    with _report_lock:
        tmp = f"{SETTINGS.report}.tmp"
        with open(tmp, "w") as f:
            json.dump(report(), f)
        os.replace(tmp, SETTINGS.report)


@events.init.add_listener
def _keep_environment(environment, **_kw) -> None:
    RUNNING["environment"] = environment


@events.request.add_listener
def _counted(request_type: str, name: str, exception: BaseException | None = None, **_kw) -> None:
    REQUESTS["requests"] += 1
    if exception is not None:
        REQUESTS["failures"] += 1
        FAILURES[f"{request_type} {name}: {exception}"] += 1


@events.user_error.add_listener
def _raised(user_instance, exception: BaseException, tb, **_kw) -> None:
    EXCEPTIONS[repr(exception)[:300]] += 1


COUNTERS = {"funnel": FUNNEL, "requests": REQUESTS, "failures": FAILURES, "exceptions": EXCEPTIONS}


@events.report_to_master.add_listener
def _to_master(client_id: str, data: dict) -> None:
    data["booking_rush"] = {
        **{k: dict(c) for k, c in COUNTERS.items()},
        "waits": dict(WAITS),
        "event": SALE.describe(),
    }
    for counter in COUNTERS.values():
        counter.clear()
    WAITS.clear()


@events.worker_report.add_listener
def _from_worker(client_id: str, data: dict) -> None:
    part = data.get("booking_rush")
    if not part:
        return
    for key, counter in COUNTERS.items():
        counter.update(part[key])
    for kind, samples in part["waits"].items():
        WAITS[kind].extend(samples[: max(0, SAMPLES_KEPT - len(WAITS[kind]))])
    if part["event"] and not SALE.event_id:
        SALE.adopt(part["event"])


@events.test_start.add_listener
def _start_reporting(environment, **_kw) -> None:
    if isinstance(environment.runner, WorkerRunner) or not SETTINGS.report:
        return

    def every_two_seconds() -> None:
        while True:
            write_report()
            gevent.sleep(2)

    gevent.spawn(every_two_seconds)


@events.quitting.add_listener
def _final_report(environment, **_kw) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    write_report()
    log.info("booking funnel: %s", json.dumps(report()["funnel"]))


# --- the sale: found once per process ---


@dataclass
class Sale:
    event_id: str = ""
    title: str = ""
    max_per_user: int = 4
    zones: list[tuple[str, str, str]] = field(default_factory=list)  # (show, zone, name)
    seats: int = 0  # available when found
    lock: Semaphore = field(default_factory=Semaphore)

    def describe(self) -> dict[str, Any]:
        if not self.event_id:
            return {}
        return {
            "id": self.event_id,
            "title": self.title,
            "seats_when_found": self.seats,
            "zones": len(self.zones),
        }

    def adopt(self, described: dict[str, Any]) -> None:
        self.event_id, self.title = described["id"], described["title"]
        self.seats = described["seats_when_found"]


SALE = Sale()
BUYERS = itertools.count()


class JourneyOver(Exception):
    """The buyer's journey ended; `outcome` is its funnel step."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


def _json(response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error(body: dict) -> tuple[str, str]:
    error = body.get("error") or {}
    return str(error.get("code", "")), str(error.get("message", ""))


class Buyer(HttpUser):
    """One seeded buyer at a time, from sign-in to a ticket (or not)."""

    wait_time = between(SETTINGS.think_min, SETTINGS.think_max)
    host = "http://127.0.0.1:8080"

    def on_start(self) -> None:
        self.email = ""
        self.token = ""
        self.tenant_id = ""

    # --- one API call, as a polite client makes it ---

    def api(
        self,
        method: str,
        path: str,
        name: str,
        *,
        body: dict | None = None,
        params: dict | None = None,
        headers: dict | None = None,
        expected: tuple[tuple[int, str], ...] = (),
        auth: bool = True,
    ) -> tuple[int, dict]:
        """(status, JSON answer). 429 waits Retry-After and asks again, 401 signs in again
        (once); both, and the (status, code) pairs in `expected`, are recorded as successes
        under "name [status CODE]"; any other answer that is not 2xx is a failure."""
        relogged = False
        for _ in range(MAX_RATE_LIMITED_RETRIES):
            sent = dict(headers or {})
            if auth:
                sent["Authorization"] = f"Bearer {self.token}"
            with self.client.request(
                method, path, name=name, json=body, params=params, headers=sent, catch_response=True
            ) as r:
                answer = _json(r)
                code, message = _error(answer)
                status = r.status_code
                retry_after = None
                if 200 <= status < 300:
                    r.success()
                elif status == 429 or (status, code) in expected or (status == 401 and auth and not relogged):
                    r.request_meta["name"] = f"{name} [{status} {code}]".rstrip()
                    r.success()
                    if status == 429:
                        retry_after = float(r.headers.get("Retry-After") or 1)
                elif status == 0:
                    r.failure(f"no answer: {r.error!r}")
                else:
                    r.failure(
                        f"{status} {code}: {message}"
                        if code
                        else f"{status}: {' '.join(r.text.split())[:200]}"
                    )
            if retry_after is not None:
                count("rate limited")
                gevent.sleep(retry_after)
                continue
            if status == 401 and auth and not relogged and (401, code) not in expected:
                relogged = True
                self.sign_in()
                continue
            return status, answer
        raise JourneyOver("errors")

    # --- the journey ---

    @task
    def journey(self) -> None:
        started = time.monotonic()
        count("journeys")
        try:
            self.sign_in(self.next_buyer())
            count("signed in")
            sale = self.find_sale()
            self.wait()  # reading the event's page
            queue_pass = self.queue(sale)
            booking = self.reserve(sale, queue_pass)
            self.checkout(booking)
        except JourneyOver as over:
            count(over.outcome)
        waited("journey", time.monotonic() - started)

    def next_buyer(self) -> str:
        runner = self.environment.runner
        worker = runner.worker_index if isinstance(runner, WorkerRunner) else 0
        n = next(BUYERS) * SETTINGS.processes + max(0, worker)
        return SETTINGS.email.format(SETTINGS.first_buyer + n % SETTINGS.buyers)

    def sign_in(self, email: str | None = None) -> None:
        self.email = email or self.email
        body = {"tenant": SETTINGS.tenant, "email": self.email, "password": SETTINGS.password}
        status, answer = self.api("POST", "/api/v1/auth/login", "/api/v1/auth/login", body=body, auth=False)
        if status != 200:
            raise JourneyOver("errors")
        self.token = answer["data"]["access_token"]
        self.tenant_id = answer["data"]["user"]["tenant_id"]

    def find_sale(self) -> Sale:
        """The event on sale (once per process): its shows, zones and per-user limit."""
        with SALE.lock:
            if SALE.zones:
                return SALE
            event, shows = self.pick_event()
            SALE.zones = [(s["show_id"], z["id"], z["name"]) for s in shows for z in s["zones"]]
            SALE.seats = sum(z["available_seats"] for s in shows for z in s["zones"])
            SALE.event_id, SALE.title = event["id"], event["title"]
            SALE.max_per_user = event.get("max_tickets_per_user") or 4
            log.info("the sale: %r (%s), %d seats left", SALE.title, SALE.event_id, SALE.seats)
            return SALE

    def availability(self, event_id: str) -> list[dict]:
        status, answer = self.api(
            "GET", f"/api/v1/events/{event_id}/availability", "/api/v1/events/[id]/availability"
        )
        return answer["data"]["shows"] if status == 200 else []

    def pick_event(self) -> tuple[dict, list[dict]]:
        """LOAD_EVENT_ID's event, or the newest published event of the buyers' organisation
        (titled LOAD_EVENT_TITLE, or a part of it, if set) with seats left; and its shows."""
        if SETTINGS.event_id:
            status, answer = self.api("GET", f"/api/v1/events/{SETTINGS.event_id}", "/api/v1/events/[id]")
            shows = self.availability(SETTINGS.event_id) if status == 200 else []
            if not shows:
                self.no_sale(f"event {SETTINGS.event_id} answered {status}, or has no zones")
            return answer["data"], shows
        wanted = SETTINGS.event_title.lower()
        for page in range(1, 21):  # the list is every organisation's, newest first
            status, answer = self.api(
                "GET", "/api/v1/events", "/api/v1/events", params={"page": page, "per_page": 100}
            )
            if status != 200:
                self.no_sale(f"the event list answered {status}")
            for event in answer["data"]:
                if event["tenant_id"] != self.tenant_id or wanted not in event["title"].lower():
                    continue
                shows = self.availability(event["id"])
                if any(z["available_seats"] > 0 for s in shows for z in s["zones"]):
                    return event, shows
            if len(answer["data"]) < 100:
                break
        titled = f" titled {SETTINGS.event_title!r}" if wanted else ""
        self.no_sale(f"no published event{titled} of tenant {SETTINGS.tenant} has seats left")
        raise AssertionError("unreachable")

    def no_sale(self, why: str) -> None:
        log.error("nothing to load-test: %s (set LOAD_EVENT_ID, or seed one: python -m ops.seed)", why)
        self.environment.events.request.fire(
            request_type="SETUP",
            name="find the event on sale",
            response_time=0,
            response_length=0,
            exception=RuntimeError(why),
            context={},
        )
        # Not from inside a user's greenlet; a worker first reports the failure to its master.
        runner = self.environment.runner
        gevent.spawn_later(4 if isinstance(runner, WorkerRunner) else 0.1, runner.quit)
        raise StopUser()

    def queue(self, sale: Sale) -> str | None:
        """Join the event's waiting room and wait to be let in: the pass (None: no room)."""
        joined = time.monotonic()
        status, answer = self.api(
            "POST", "/api/v1/queue/join", "/api/v1/queue/join", body={"event_id": sale.event_id}
        )
        if status != 200:
            raise JourneyOver("errors")
        count("joined")
        standing = answer["data"]
        if standing["state"] in WAITING_STATES:
            if LISTENING.pick() == "stream":
                count("followed the stream")
                standing = self.follow_stream(sale, standing, joined)
            else:
                count("polled")
            standing = self.poll(sale, standing, joined)
        return self.let_in(standing, joined)

    def let_in(self, standing: dict, joined: float) -> str | None:
        state = standing["state"]
        if state == "admitted":
            count("admitted")
            waited("queue", time.monotonic() - joined)
            return standing["pass"]
        if state == "open":  # no room engaged: reserve without a pass
            count("admitted")
            count("no room")
            return None
        if state == "sold_out":
            raise JourneyOver("sold out")
        if state == "closed":
            raise JourneyOver("room closed")
        if state in WAITING_STATES:
            raise JourneyOver("gave up waiting")
        log.warning("queue answered state %r", state)
        raise JourneyOver("errors")

    def poll(self, sale: Sale, standing: dict, joined: float) -> dict:
        """GET /queue/status as often as the answer says, until no longer waiting."""
        while standing["state"] in WAITING_STATES:
            if time.monotonic() - joined > SETTINGS.max_wait_s:
                return standing
            gevent.sleep(standing.get("refresh_after_seconds") or 5)
            status, answer = self.api(
                "GET", "/api/v1/queue/status", "/api/v1/queue/status", params={"event_id": sale.event_id}
            )
            if status != 200:
                raise JourneyOver("errors")
            standing = answer["data"]
        return standing

    def follow_stream(self, sale: Sale, standing: dict, joined: float) -> dict:
        """The live position (SSE) until it ends; the last standing (polling takes over if the
        stream breaks). Locust times the stream request to its first byte."""
        params = {"event_id": sale.event_id, "ticket": standing["queue_ticket"]}
        with self.client.get(
            "/api/v1/queue/stream",
            name="/api/v1/queue/stream",
            params=params,
            stream=True,
            timeout=(10, 60),  # heartbeats come every 15 s
            catch_response=True,
        ) as r:
            if r.status_code != 200:
                code, message = _error(_json(r))
                r.failure(f"{r.status_code} {code}: {message}")
                r.close()
                return standing
            r.success()
        latest = dict(standing)
        kind = ""
        try:
            for raw in r.iter_lines(chunk_size=None):
                line = raw.decode()
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:") and kind in ("standing", "admitted"):
                    latest.update(json.loads(line[5:]))
                    if latest["state"] not in WAITING_STATES:
                        break
                if time.monotonic() - joined > SETTINGS.max_wait_s:  # heartbeats bring us here
                    break
        except Exception as exc:  # a broken stream: polling carries on
            count("stream broke")
            log.debug("stream broke: %r", exc)
        finally:
            r.close()
        return latest

    def reserve(self, sale: Sale, queue_pass: str | None, requeued: bool = False) -> dict:
        """A zone of the buyer's choice, others when it has run out, one seat when two are
        nowhere to be had; 202 answers are followed to the end."""
        wanted = random.randint(1, max(1, min(SETTINGS.max_quantity, sale.max_per_user)))
        headers = {"X-Queue-Pass": queue_pass} if queue_pass else {}
        started = time.monotonic()
        expected = ((409, "INSUFFICIENT_STOCK"), (409, "MAX_PER_USER_EXCEEDED"), (403, "QUEUE_PASS_REQUIRED"))
        for quantity in sorted({wanted, 1}, reverse=True):
            for show, zone, _ in random.sample(sale.zones, len(sale.zones)):
                body = {
                    "event_id": sale.event_id,
                    "show_id": show,
                    "zone_id": zone,
                    "quantity": quantity,
                    "idempotency_key": uuid.uuid4().hex,  # a 429's retry is the same request
                }
                status, answer = self.api(
                    "POST",
                    "/api/v1/bookings/reserve",
                    "/api/v1/bookings/reserve",
                    body=body,
                    headers=headers,
                    expected=expected,
                )
                status, answer = self.late_answer(status, answer, expected)
                code, _ = _error(answer)
                if status in (200, 201):
                    count("reserved")
                    count("seats reserved", quantity)
                    waited("reserve", time.monotonic() - started)
                    return answer["data"]
                if code == "QUEUE_PASS_REQUIRED" and not requeued:  # the room engaged after an "open" join
                    return self.reserve(sale, self.queue(sale), requeued=True)
                if code == "MAX_PER_USER_EXCEEDED":
                    raise JourneyOver("over the per-user limit")
                if code != "INSUFFICIENT_STOCK" or status != 409:
                    raise JourneyOver("errors")
        raise JourneyOver("sold out")

    def late_answer(self, status: int, answer: dict, expected: tuple) -> tuple[int, dict]:
        """Follow a 202 to its final answer at its `poll` path."""
        deadline = time.monotonic() + 60
        while status == 202:
            if time.monotonic() > deadline:
                raise JourneyOver("errors")
            gevent.sleep(0.25)
            status, answer = self.api(
                "GET", answer["data"]["poll"], "/api/v1/bookings/requests/[id]", expected=expected
            )
        return status, answer

    def checkout(self, booking: dict) -> None:
        booking_id = booking["booking_id"]
        choice = CHECKOUT.pick()
        self.wait()  # filling in the card, or thinking better of it
        if choice == "walk away":
            count("walked away")
            raise JourneyOver("abandoned")
        if choice == "cancel":
            status, _ = self.api(
                "POST",
                f"/api/v1/bookings/{booking_id}/cancel",
                "/api/v1/bookings/[id]/cancel",
                expected=((409, "INVALID_STATUS_TRANSITION"),),
            )
            count("cancelled")
            raise JourneyOver("abandoned" if status == 200 else "expired")
        card = DECLINED_CARD if choice == "declined card" else GOOD_CARD
        payment = self.pay(booking_id, card)
        if payment["status"] == "failed":
            raise JourneyOver("declined")
        self.confirm(booking_id)

    def pay(self, booking_id: str, card: dict) -> dict:
        """POST /payments, then its status until it settles: the settled payment."""
        started = time.monotonic()
        body = {"booking_id": booking_id, "method": "card", "details": card}
        expected = ((410, "RESERVATION_EXPIRED"),)
        status, answer = self.api(
            "POST", "/api/v1/payments", "/api/v1/payments", body=body, expected=expected
        )
        status, answer = self.late_answer(status, answer, expected)
        if status == 410:
            raise JourneyOver("expired")
        if status not in (200, 201):
            raise JourneyOver("errors")
        payment_id = answer["data"]["payment_id"]
        declining = card is DECLINED_CARD
        deadline = time.monotonic() + 60
        while True:
            gevent.sleep(SETTINGS.payment_poll_s)
            with self.client.get(
                f"/api/v1/payments/{payment_id}",
                name="/api/v1/payments/[id]",
                headers={"Authorization": f"Bearer {self.token}"},
                catch_response=True,
            ) as r:
                payment = (_json(r).get("data") or {}) if r.status_code == 200 else {}
                settled = payment.get("status") in ("success", "failed")
                if r.status_code == 429:
                    r.request_meta["name"] = "/api/v1/payments/[id] [429 RATE_LIMITED]"
                    r.success()
                elif r.status_code != 200:
                    code, message = _error(_json(r))
                    r.failure(f"{r.status_code} {code}: {message}")
                    raise JourneyOver("errors")
                elif settled and (payment["status"] == "failed") != declining:
                    r.failure(
                        f"a {'declining' if declining else 'good'} card's payment ended {payment['status']}"
                        f" ({payment.get('failure_reason')})"
                    )
                elif not settled and time.monotonic() > deadline:
                    r.failure(f"payment not settled in 60 s: {payment.get('status')}")
                    raise JourneyOver("errors")
                else:
                    r.success()
            if settled:
                waited("payment", time.monotonic() - started)
                return payment

    def confirm(self, booking_id: str) -> None:
        """The confirmed booking with its e-ticket code (asked again while the payment settles)."""
        deadline = time.monotonic() + 30
        while True:
            status, answer = self.api(
                "POST",
                f"/api/v1/bookings/{booking_id}/confirm",
                "/api/v1/bookings/[id]/confirm",
                expected=((409, "PAYMENT_IN_PROGRESS"),),
            )
            if status == 200 and answer["data"].get("ticket_code"):
                raise JourneyOver("paid")
            if status != 409 or time.monotonic() > deadline:
                raise JourneyOver("errors")
            gevent.sleep(0.5)
