// The operator dashboard (admins): the tenant's published events; for the one watched, live seats
// per show and zone (/events/{id}/availability) and the waiting room's settings and live stats
// (/admin/events/{id}/room), refreshed every few seconds, with a chart of the queue depth and the
// admission rate drawn from the samples this page keeps, and a form that changes the room.
import { when } from "/static/page-basics.js";
import { api, currentSession, requireSignIn, signOut } from "/static/session.js";

const REFRESH_MS = 3000; // two requests per refresh: well inside the general rate limit
// The signs of bots cost a database look-up over the people in line: every 30 s is enough.
const PATTERNS_MS = 30000;
const REFUNDS_MS = 10000; // the refund requests waiting for a decision, asked this often
const CHART_WINDOW_MS = 10 * 60 * 1000; // the chart shows at most the last 10 minutes ...
const MIN_SPAN_MS = 30 * 1000; // ... and at least the last 30 s, so the first samples spread out
const PER_PAGE = 100; // the most /events hands out at once
// /events lists every tenant's published events, newest first; the page keeps its own tenant's.
// It looks through this many pages at first, and as many more each time the operator asks.
const SCAN_PAGES = 5;
const FIELDS = ["mode", "rate_per_min", "max_active"];
// Chart geometry, in the SVG's viewBox units (dashboard.html draws the axes to match).
const CHART = { left: 40, right: 560, top: 10, bottom: 160 };

const statusLine = document.getElementById("dash-status");
const panel = document.getElementById("event-panel");
const panelError = document.getElementById("panel-error");
const form = document.getElementById("room-form");
const formStatus = document.getElementById("room-form-status");

const session = currentSession();
let tenantEvents = []; // the tenant's published events found so far
let scannedPages = 0;
let totalPages = null;
let watched = null; // the event watched now (an /events record, or {id} from the address)
let watchGeneration = 0; // bumps on every change of event: late answers for an old one are dropped
let refreshTimer = null;
let inFlight = null; // the watch generation a refresh is under way for
let samples = []; // {t, depth, rate} of the watched event's room, oldest first
let formBase = null; // the room config the form was filled from
let adminsOnly = false;
let patternsAt = 0; // when the signs of bots were last asked for
let refundsAt = 0; // when the refund requests were last asked for

function number(value) {
  return value === null || value === undefined ? "–" : Number(value).toLocaleString("en-US").replace(/,/g, " ");
}

function text(id, value) {
  document.getElementById(id).textContent = value;
}

function showWho() {
  const signedIn = Boolean(session && session.user);
  document.getElementById("signed-in").hidden = !signedIn;
  if (signedIn) text("user-email", session.user.email);
}

document.getElementById("sign-out").addEventListener("click", async () => {
  await signOut();
  location.assign("/events");
});

function showAdminsOnly() {
  adminsOnly = true;
  clearTimeout(refreshTimer);
  document.getElementById("admins-only").hidden = false;
  document.getElementById("events-section").hidden = true;
  panel.hidden = true;
  statusLine.textContent = "";
  statusLine.hidden = true;
}

// A failure common to every call: signed out meanwhile, not an admin. True when it was one.
function handledEverywhere(failure) {
  if (failure.status === 401) {
    requireSignIn(); // the session is gone: sign in, come back here
    return true;
  }
  if (failure.status === 403) {
    showAdminsOnly();
    return true;
  }
  return false;
}

// ---- the tenant's events ----

function renderEventTable() {
  const rows = tenantEvents.map((event) => {
    const row = document.getElementById("event-row-template").content.firstElementChild.cloneNode(true);
    row.dataset.eventId = event.id;
    row.querySelector(".event-name").textContent = event.title;
    row.querySelector(".event-venue").textContent = event.venue || "";
    row.querySelector(".event-shows").textContent = `${event.shows_count}`;
    row.querySelector(".event-next").textContent = when(event.next_show);
    const button = row.querySelector(".watch");
    button.addEventListener("click", () => watch(event));
    if (watched && watched.id === event.id) {
      row.classList.add("watched");
      button.disabled = true;
      button.textContent = "Watching";
    }
    return row;
  });
  document.querySelector("#event-table tbody").replaceChildren(...rows);
  document.getElementById("event-table").hidden = rows.length === 0;
  const more = totalPages !== null && scannedPages < totalPages;
  document.getElementById("more-events").hidden = !more;
  const found = tenantEvents.length
    ? `${tenantEvents.length} event(s) of your organisation`
    : "No published events of your organisation";
  text(
    "events-scan",
    more
      ? `${found} among the newest ${scannedPages * PER_PAGE} published events.`
      : `${found}.`,
  );
}

async function scanEvents(pages) {
  const button = document.getElementById("more-events");
  button.disabled = true;
  try {
    for (let i = 0; i < pages && (totalPages === null || scannedPages < totalPages); i += 1) {
      const query = new URLSearchParams({ page: String(scannedPages + 1), per_page: String(PER_PAGE) });
      const answer = await api(`/api/v1/events?${query}`);
      scannedPages += 1;
      totalPages = Math.max(1, Math.ceil(answer.meta.total / PER_PAGE));
      const known = new Set(tenantEvents.map((e) => e.id));
      for (const event of answer.data) {
        if (event.tenant_id === session.user.tenant_id && !known.has(event.id)) tenantEvents.push(event);
      }
    }
  } finally {
    button.disabled = false;
  }
}

document.getElementById("more-events").addEventListener("click", async () => {
  try {
    await scanEvents(SCAN_PAGES);
  } catch (failure) {
    if (!handledEverywhere(failure)) text("events-scan", `Could not load more events: ${failure.message}`);
    return;
  }
  renderEventTable();
  if (!watched && tenantEvents.length) watch(tenantEvents[0]);
});

// ---- the watched event ----

function watch(event) {
  watchGeneration += 1;
  watched = event;
  samples = [];
  formBase = null;
  patternsAt = 0;
  refundsAt = 0;
  clearTimeout(refreshTimer);
  const query = new URLSearchParams(location.search);
  query.set("event", event.id);
  history.replaceState(null, "", `?${query}`);
  text("event-title", event.title || "Loading…");
  const facts = [event.venue, event.next_show && `next show ${when(event.next_show)}`];
  text("event-meta", facts.filter(Boolean).join(" · "));
  for (const id of ["seats-total", "seats-taken", "seats-remaining", "held-bookings", "room-mode",
    "room-engaged", "queue-depth", "queue-split", "room-active", "room-admitted", "room-rate",
    "room-rate-setting", "room-max-active", "join-addresses", "new-accounts"]) {
    text(id, "–");
  }
  document.getElementById("shows").replaceChildren();
  document.querySelector("#busiest-addresses tbody").replaceChildren();
  document.querySelector("#refund-requests tbody").replaceChildren();
  text("refunds-status", "–");
  text("refreshed", "");
  formStatus.textContent = "";
  showFieldErrors({});
  drawChart();
  panel.hidden = false;
  renderEventTable();
  if (!event.title) loadTitle(event, watchGeneration);
  refresh();
}

async function loadTitle(event, generation) {
  try {
    const { data } = await api(`/api/v1/events/${encodeURIComponent(event.id)}`);
    if (generation !== watchGeneration) return;
    Object.assign(event, data);
    text("event-title", data.title);
    const facts = [data.venue, data.shows && data.shows.length && `${data.shows.length} show(s)`];
    text("event-meta", facts.filter(Boolean).join(" · "));
  } catch {
    // The room answer says whether the event is the operator's; the title just stays unknown.
  }
}

function showPatterns(patterns) {
  const { join_addresses: joins, in_line: line } = patterns;
  text("join-addresses", number(joins.addresses));
  const share = line.checked ? ` (${Math.round((100 * line.new_accounts_last_hour) / line.checked)} %)` : "";
  text("new-accounts", `${number(line.new_accounts_last_hour)} of ${number(line.checked)}${share}`);
  const rows = joins.busiest.map(({ address, joins: count }) => {
    const row = document.createElement("tr");
    row.append(cell("address", address), cell("joins", number(count)));
    return row;
  });
  document.querySelector("#busiest-addresses tbody").replaceChildren(...rows);
}

// The signs of bots, when due; a failure here leaves the rest of the panel alone.
async function refreshPatterns(id, generation) {
  if (Date.now() - patternsAt < PATTERNS_MS) return;
  patternsAt = Date.now();
  try {
    const { data } = await api(`/api/v1/admin/events/${id}/room/patterns`);
    if (generation === watchGeneration) showPatterns(data);
  } catch {
    patternsAt = 0; // ask again at the next refresh
  }
}

function showSales(stats) {
  text("seats-total", number(stats.seats_total));
  text("seats-taken", number(stats.seats_taken));
  text("seats-remaining", number(stats.seats_remaining));
  text("held-bookings", number(stats.held_bookings));
  document.getElementById("sold-out").hidden = !stats.sold_out;
}

function showRoom(room) {
  const { config, stats } = room;
  text("room-mode", config.mode);
  text("room-engaged", stats.engaged ? "yes" : "no");
  text("queue-depth", number(stats.waiting + stats.prequeue));
  text("queue-split", `${number(stats.waiting)} · ${number(stats.prequeue)}`);
  text("room-active", number(stats.active));
  text("room-admitted", number(stats.admitted));
  text("room-rate", number(stats.admission_rate_per_min));
  text("room-rate-setting", number(config.rate_per_min));
  text("room-max-active", number(config.max_active));
  document.body.dataset.roomMode = config.mode;
  showSales(stats);
  // Someone (here or elsewhere) changed the room: show it, unless the operator is editing.
  if (!formBase || !changedFields().length) fillForm(config);
}

function cell(cls, value) {
  const td = document.createElement("td");
  td.className = cls;
  td.textContent = value;
  return td;
}

function takenMeter(taken, total) {
  const meter = document.createElement("meter");
  meter.min = 0;
  meter.max = Math.max(1, total);
  meter.value = taken;
  meter.high = 0.9 * meter.max;
  meter.textContent = `${total ? Math.round((100 * taken) / total) : 0}%`;
  return meter;
}

function showShows(availability) {
  const sections = availability.shows.map((show) => {
    const section = document.getElementById("show-template").content.firstElementChild.cloneNode(true);
    section.dataset.showId = show.show_id;
    section.querySelector(".show-date").textContent = when(show.show_date);
    let total = 0;
    let remaining = 0;
    const rows = show.zones.map((zone) => {
      const taken = zone.total_seats - zone.available_seats;
      total += zone.total_seats;
      remaining += zone.available_seats;
      const row = document.createElement("tr");
      row.dataset.zoneId = zone.id;
      const bar = document.createElement("td");
      bar.append(takenMeter(taken, zone.total_seats));
      row.append(
        cell("zone-name", zone.name),
        cell("zone-total", number(zone.total_seats)),
        cell("zone-taken", number(taken)),
        cell("zone-remaining", number(zone.available_seats)),
        bar,
      );
      if (zone.available_seats === 0) row.classList.add("sold-out");
      return row;
    });
    section.querySelector("tbody").replaceChildren(...rows);
    const foot = section.querySelector(".show-total");
    foot.querySelector(".zone-total").textContent = number(total);
    foot.querySelector(".zone-taken").textContent = number(total - remaining);
    foot.querySelector(".zone-remaining").textContent = number(remaining);
    return section;
  });
  document.getElementById("shows").replaceChildren(...sections);
}

// ---- the chart: an inline SVG drawn from the samples ----

function niceMax(value) {
  if (value <= 5) return 5;
  const step = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 5, 10]) if (m * step >= value) return m * step;
  return 10 * step;
}

// The x axis spans the samples kept (at least MIN_SPAN_MS, at most the window), ending now.
function points(now, span, key, max) {
  const width = CHART.right - CHART.left;
  const height = CHART.bottom - CHART.top;
  return samples
    .map((s) => {
      const x = CHART.left + (width * (s.t - (now - span))) / span;
      const y = CHART.bottom - (height * s[key]) / max;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(" ");
}

function ago(ms) {
  const seconds = Math.round(ms / 1000);
  return seconds < 120 ? `−${seconds} s` : `−${Math.round(seconds / 60)} min`;
}

function drawChart() {
  const now = Date.now();
  samples = samples.filter((s) => s.t >= now - CHART_WINDOW_MS);
  const depthMax = niceMax(Math.max(0, ...samples.map((s) => s.depth)));
  const rateMax = niceMax(Math.max(0, ...samples.map((s) => s.rate)));
  const span = Math.max(MIN_SPAN_MS, samples.length ? now - samples[0].t : 0);
  document.getElementById("depth-line").setAttribute("points", points(now, span, "depth", depthMax));
  document.getElementById("rate-line").setAttribute("points", points(now, span, "rate", rateMax));
  text("chart-start", ago(span));
  text("depth-max", number(depthMax));
  text("rate-max", number(rateMax));
  document.getElementById("room-chart").dataset.samples = String(samples.length);
  const last = samples[samples.length - 1];
  text(
    "chart-summary",
    last
      ? `${samples.length} sample(s) since ${new Date(samples[0].t).toLocaleTimeString()}; now ` +
          `${number(last.depth)} in the queue, ${number(last.rate)} let in during the last minute.`
      : "No samples yet.",
  );
}

// ---- refreshing ----

function scheduleRefresh(ms = REFRESH_MS) {
  clearTimeout(refreshTimer);
  if (!adminsOnly) refreshTimer = setTimeout(refresh, ms);
}

// ---- refund requests: approve, or refuse with a reason (the buyer is mailed either way) ----

function refundRow(refund, id, generation) {
  const row = document.createElement("tr");
  row.dataset.paymentId = refund.payment_id;
  const decide = document.createElement("td");
  decide.className = "decide";
  const approve = document.createElement("button");
  approve.type = "button";
  approve.className = "approve";
  approve.textContent = "Approve";
  const reason = document.createElement("input");
  reason.className = "reason";
  reason.maxLength = 500;
  reason.placeholder = "Reason to refuse";
  reason.setAttribute("aria-label", `Reason to refuse the refund of ${refund.buyer.email}`);
  const refuse = document.createElement("button");
  refuse.type = "button";
  refuse.className = "refuse";
  refuse.textContent = "Refuse";
  const decided = async (verb, body) => {
    approve.disabled = refuse.disabled = true;
    try {
      const url = `/api/v1/admin/payments/${encodeURIComponent(refund.payment_id)}/refund/${verb}`;
      await api(url, { method: "POST", body });
      text("refunds-status", `${verb === "approve" ? "Approved" : "Refused"}: ${refund.buyer.email}. They are mailed.`);
      row.remove();
    } catch (failure) {
      if (handledEverywhere(failure)) return;
      text("refunds-status", failure.message || "That did not go through; try again.");
      approve.disabled = refuse.disabled = false;
    }
  };
  approve.addEventListener("click", () => decided("approve"));
  refuse.addEventListener("click", () => {
    if (!reason.value.trim()) {
      text("refunds-status", "Say why it is refused: the buyer is told.");
      reason.focus();
      return;
    }
    decided("refuse", { reason: reason.value.trim() });
  });
  decide.append(approve, reason, refuse);
  const share = `${refund.refund.amount} (${refund.refund.percent} % of ${refund.amount})`;
  row.append(cell("buyer", refund.buyer.email), cell("tickets", number(refund.quantity)), cell("share", share), decide);
  return row;
}

async function refreshRefunds(id, generation) {
  if (Date.now() - refundsAt < REFUNDS_MS) return;
  refundsAt = Date.now();
  try {
    const { data, meta } = await api(`/api/v1/admin/events/${id}/refunds?status=requested&per_page=50`);
    if (generation !== watchGeneration) return;
    const body = document.querySelector("#refund-requests tbody");
    const open = new Set([...body.querySelectorAll("input.reason")].filter((i) => i.value).map((i) => i.closest("tr").dataset.paymentId));
    // A row someone is typing a reason into stays as it is.
    body.replaceChildren(
      ...data.map((refund) =>
        open.has(refund.payment_id)
          ? body.querySelector(`tr[data-payment-id="${refund.payment_id}"]`) || refundRow(refund, id, generation)
          : refundRow(refund, id, generation),
      ),
    );
    text("refunds-status", meta.total ? `${number(meta.total)} waiting` : "None waiting.");
  } catch {
    refundsAt = 0; // ask again at the next refresh
  }
}

async function refresh() {
  if (!watched || adminsOnly || inFlight === watchGeneration) return;
  if (document.visibilityState === "hidden") {
    scheduleRefresh(); // nobody looks: ask again later (visibilitychange refreshes at once)
    return;
  }
  const generation = watchGeneration;
  inFlight = generation;
  const id = encodeURIComponent(watched.id);
  let wait = REFRESH_MS;
  try {
    const [room, seats] = await Promise.allSettled([
      api(`/api/v1/admin/events/${id}/room`),
      api(`/api/v1/events/${id}/availability`),
    ]);
    if (generation !== watchGeneration) return;
    if (room.status === "rejected") throw room.reason;
    showRoom(room.value.data);
    const { stats } = room.value.data;
    samples.push({ t: Date.now(), depth: stats.waiting + stats.prequeue, rate: stats.admission_rate_per_min });
    drawChart();
    if (seats.status === "fulfilled") showShows(seats.value.data);
    refreshPatterns(id, generation);
    refreshRefunds(id, generation);
    panelError.hidden = true;
    if (seats.status === "rejected") {
      panelError.textContent = `Seats per zone unavailable right now (${seats.reason.message}).`;
      panelError.hidden = false;
    }
    text("refreshed", `Updated ${new Date().toLocaleTimeString()}, every ${REFRESH_MS / 1000} s`);
  } catch (failure) {
    if (generation !== watchGeneration || handledEverywhere(failure)) return;
    if (failure.status === 404) {
      panelError.textContent = "This event is not one of your organisation's, or it no longer exists.";
      panelError.hidden = false;
      return; // nothing to watch: no more refreshes
    }
    if (failure.retryAfter) wait = 1000 * failure.retryAfter;
    panelError.textContent =
      failure.code === "RATE_LIMITED"
        ? "Asking too often; the figures resume shortly."
        : `Could not refresh (${failure.message}); the figures shown may be stale. Trying again.`;
    panelError.hidden = false;
  } finally {
    if (inFlight === generation) inFlight = null;
  }
  if (generation === watchGeneration) scheduleRefresh(wait);
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") refresh();
});

// ---- room controls ----

function fillForm(config) {
  formBase = { mode: config.mode, rate_per_min: config.rate_per_min, max_active: config.max_active };
  form.elements.mode.value = config.mode;
  form.elements.rate_per_min.value = String(config.rate_per_min);
  form.elements.max_active.value = String(config.max_active);
}

// What the form says for one setting: numbers as integers where they are ones; what else was typed
// goes as it is (an empty field as null), for the API to name the problem.
function formValue(name) {
  const raw = form.elements[name].value.trim();
  if (name === "mode") return raw;
  if (raw === "") return null;
  const value = Number(raw);
  return Number.isFinite(value) ? value : raw;
}

function changedFields() {
  if (!formBase) return [];
  return FIELDS.filter((name) => formValue(name) !== formBase[name]);
}

function showFieldErrors(problems) {
  for (const line of form.querySelectorAll(".field-error")) {
    const message = problems[line.dataset.field];
    line.textContent = message ? `Must be ${message}.` : "";
    line.hidden = !message;
    const input = form.elements[line.dataset.field];
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
}

form.addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  if (!watched || !formBase) return;
  showFieldErrors({});
  const changes = {};
  for (const name of changedFields()) changes[name] = formValue(name);
  if (!Object.keys(changes).length) {
    formStatus.textContent = "Nothing to change: the form shows the room's settings.";
    return;
  }
  const generation = watchGeneration;
  const button = document.getElementById("room-save");
  button.disabled = true;
  formStatus.textContent = "Saving…";
  try {
    const { data } = await api(`/api/v1/admin/events/${encodeURIComponent(watched.id)}/room`, {
      method: "PUT",
      body: changes,
    });
    if (generation !== watchGeneration) return;
    fillForm(data.config);
    showRoom(data);
    const said = Object.keys(changes).map((name) => `${name.replace(/_/g, " ")} ${data.config[name]}`);
    formStatus.textContent = `Saved: ${said.join(", ")}. Admitters apply it within a tick.`;
  } catch (failure) {
    if (handledEverywhere(failure)) return;
    if (failure.code === "VALIDATION_ERROR" && failure.details) {
      const known = Object.fromEntries(Object.entries(failure.details).filter(([k]) => FIELDS.includes(k)));
      showFieldErrors(known);
      const other = Object.keys(failure.details).filter((k) => !FIELDS.includes(k));
      formStatus.textContent = other.length
        ? `Not saved: ${failure.message}.`
        : "Not saved: check the highlighted setting.";
      const first = Object.keys(known)[0];
      if (first) form.elements[first].focus();
    } else if (failure.status === 404) {
      formStatus.textContent = "Not saved: this event is not one of your organisation's.";
    } else {
      formStatus.textContent = `Not saved: ${failure.message}. Try again.`;
    }
  } finally {
    button.disabled = false;
  }
});

for (const name of FIELDS) {
  form.elements[name].addEventListener("input", () => {
    const line = form.querySelector(`.field-error[data-field="${name}"]`);
    line.hidden = true;
    form.elements[name].removeAttribute("aria-invalid");
  });
}

document.getElementById("room-reset").addEventListener("click", () => {
  if (formBase) fillForm(formBase);
  showFieldErrors({});
  formStatus.textContent = "";
});

// ---- start ----

async function start() {
  showWho();
  if (!(session.user && session.user.role === "admin")) {
    showAdminsOnly(); // the API would answer 403 to every call this page makes
    return;
  }
  document.getElementById("events-section").hidden = false;
  try {
    await scanEvents(SCAN_PAGES);
  } catch (failure) {
    if (!handledEverywhere(failure)) statusLine.textContent = `Could not load events: ${failure.message}`;
    return;
  }
  statusLine.textContent = "";
  statusLine.hidden = true;
  const asked = new URLSearchParams(location.search).get("event");
  const chosen = asked ? tenantEvents.find((e) => e.id === asked) || { id: asked } : tenantEvents[0];
  renderEventTable();
  if (chosen) watch(chosen);
}

if (requireSignIn()) start();
