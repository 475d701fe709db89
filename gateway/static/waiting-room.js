// The waiting room page: joins the event's line and shows the place, the people ahead and an
// estimated wait, live from the position stream (SSE) or, where that is missing or fails, by
// polling /queue/status. On admission it keeps the queue pass and goes on to the booking page.
import { choose, dateTime, number as formatted, t, translatePage } from "/static/i18n.js";
import { idFromPath } from "/static/page-basics.js";
import { forgetPass, keepPass } from "/static/queue-pass.js";
import { api, requireSignIn } from "/static/session.js";

const DEFAULT_POLL_S = 5; // when the server does not say (refresh_after_seconds)
const QUIET_POLL_S = 30; // closed or sold out: nothing moves soon
// The stream sends a `heartbeat` event every 15 s: this long without any event and the stream
// counts as stalled (two heartbeat periods).
const STREAM_SILENCE_MS = 2 * 15000;
const STREAM_RETRY_MS = [1000, 30000, 60000, 120000, 300000]; // after each failure in a row
// The server ends the stream after telling these; anything else it keeps open.
const STREAM_ENDS = new Set(["admitted", "sold_out", "open", "not_joined"]);

const eventId = idFromPath();
const bookingPage = `/book/${encodeURIComponent(eventId)}`;
const firstPositionKey = `booking-rush.first-position.${eventId}`;

const stateLine = document.getElementById("room-state");
const errorLine = document.getElementById("room-error");

let pollTimer = null;
let stream = null;
let silenceTimer = null;
let retryTimer = null;
let streamFailures = 0;
let leaving = false;
let opensAt = null; // from join and status answers (stream events do not repeat it)
let closedReason = null; // why the system closed the room (tenant_suspended), from the same answers
// The stream URL's ticket lives minutes: the stream sends a fresh one before it runs out, and a
// stream reopened later uses the freshest held.
let streamTicket = null;
let streamOpenedWith = null;
let lastStanding = null; // said again in another language when the reader switches
let lastAnnounced = { position: null, at: 0 };
const SUBSCRIBE_WAIT_MS = 15000; // for the browser to sign up with its push service
const ANNOUNCE_EVERY_MS = 20000; // a screen reader hears the place at most this often (unless near the front)

function minutesText(minutes) {
  return minutes < 60
    ? formatted(minutes)
    : t("eta.hours", { h: formatted(Math.floor(minutes / 60)), m: minutes % 60 });
}

// The wait as a range ("about 4–6 minutes"), or why there is none to say.
function waitText(standing) {
  switch (standing.eta_status) {
    case "paused":
      return t("eta.paused");
    case "not_open":
      return opensAt ? t("eta.not_open_at", { time: dateTime(opensAt) }) : t("eta.not_open");
    case "sold_out":
      return t("eta.sold_out");
    case "closed":
      return t("eta.closed");
    case "estimate":
      break;
    default:
      return t("eta.unknown");
  }
  const [low, high] = standing.eta_range_seconds;
  if (high < 60) return t("eta.under_minute");
  const [from, to] = [Math.max(1, Math.round(low / 60)), Math.max(1, Math.round(high / 60))];
  if (from === to) return from === 1 ? t("eta.one_minute") : t("eta.minutes", { n: minutesText(from) });
  return t("eta.range", { from: minutesText(from), to: minutesText(to) });
}

function describe(standing) {
  if (standing.opens_at) opensAt = standing.opens_at;
  if ("closed_reason" in standing) closedReason = standing.closed_reason; // stream events do not repeat it
  switch (standing.state) {
    case "waiting":
      return standing.admission_rate_per_min > 0 ? t("state.waiting") : t("state.waiting_still");
    case "prequeue":
      return (
        (opensAt ? t("state.prequeue_at", { time: dateTime(opensAt) }) : t("state.prequeue_soon")) +
        t("state.prequeue")
      );
    case "closed":
      return closedReason ? t(`state.closed_${closedReason}`) : t("state.closed");
    case "paused":
    case "sold_out":
    case "admitted":
      return t(`state.${standing.state}`);
    default:
      return t("state.other", { state: standing.state });
  }
}

// How far the user has come from the first place this tab saw to the front (1st in line).
function showProgress(position) {
  const bar = document.getElementById("progress");
  if (position === null || position === undefined) {
    bar.removeAttribute("value"); // indeterminate: no place yet (pre-queue)
    return;
  }
  const seen = Number(sessionStorage.getItem(firstPositionKey)) || 0;
  const first = seen >= position ? seen : position; // a new place at the back starts afresh
  sessionStorage.setItem(firstPositionKey, String(first));
  bar.max = Math.max(1, first - 1);
  bar.value = first === 1 ? 1 : first - position;
  bar.textContent = `${Math.round((100 * bar.value) / bar.max)}%`;
}

// The place, to screen readers: when it changes, at most every ANNOUNCE_EVERY_MS (every change
// in the last ten), so that a fast line is not read out at every tick.
function announce(standing) {
  const { position } = standing;
  if (position === null || position === undefined || position === lastAnnounced.position) return;
  const now = Date.now();
  if (position > 10 && now - lastAnnounced.at < ANNOUNCE_EVERY_MS) return;
  lastAnnounced = { position, at: now };
  document.getElementById("announce").textContent = t("announce.place", {
    position: formatted(position),
    wait: waitText(standing),
  });
}

function show(standing) {
  lastStanding = standing;
  errorLine.hidden = true;
  stateLine.textContent = describe(standing);
  const inLine = ["waiting", "paused", "prequeue"].includes(standing.state);
  document.getElementById("standing").hidden = !inLine;
  document.body.dataset.state = standing.state;
  if (!inLine) return;
  const number = (value, unknown = "–") =>
    value === null || value === undefined ? unknown : formatted(value);
  document.getElementById("position").textContent = number(standing.position, t("standing.drawn"));
  document.getElementById("ahead").textContent = number(standing.ahead);
  document.getElementById("eta").textContent = waitText(standing);
  document.getElementById("waiting").textContent = number(standing.waiting);
  document.getElementById("rate").textContent = number(standing.admission_rate_per_min);
  showProgress(standing.position);
  announce(standing);
}

function leave(message) {
  leaving = true;
  stopPolling();
  closeStream();
  clearTimeout(retryTimer);
  sessionStorage.removeItem(firstPositionKey);
  sessionStorage.removeItem(notifyingKey); // my turn came: the subscription went with it
  stateLine.textContent = message;
  location.assign(bookingPage);
}

// One standing, from a join, a poll or the stream.
function handle(standing) {
  if (leaving) return;
  if (standing.state === "admitted" && standing.pass) {
    keepPass(eventId, standing.pass, standing.pass_expires_at);
    leave(t("state.your_turn"));
  } else if (standing.state === "admitted") {
    poll(); // admitted without the pass in hand: the status answer carries it
  } else if (standing.state === "open") {
    forgetPass(eventId); // no line now: booking needs no pass
    leave(t("state.no_line"));
  } else {
    show(standing);
  }
}

function trouble(failure, retry) {
  if (failure.status === 401 && !requireSignIn()) return; // signed out meanwhile: sign in, come back
  if (failure.status === 404) {
    stopPolling();
    closeStream();
    stateLine.textContent = t("state.not_on_sale");
    return;
  }
  errorLine.textContent =
    failure.code === "RATE_LIMITED"
      ? t("trouble.busy")
      : t("trouble.connection", { message: failure.message });
  errorLine.hidden = false;
  clearTimeout(pollTimer);
  pollTimer = setTimeout(retry, 1000 * (failure.retryAfter || DEFAULT_POLL_S));
}

function stopPolling() {
  clearTimeout(pollTimer);
  pollTimer = null;
}

function schedulePoll(standing) {
  stopPolling();
  if (leaving) return;
  const quiet = standing && (standing.state === "closed" || standing.state === "sold_out");
  const seconds = (standing && standing.refresh_after_seconds) || (quiet ? QUIET_POLL_S : DEFAULT_POLL_S);
  pollTimer = setTimeout(poll, seconds * 1000);
}

// A poll is also the heartbeat that keeps the place while no stream is open.
async function poll() {
  stopPolling();
  let standing;
  try {
    ({ data: standing } = await api(`/api/v1/queue/status?event_id=${encodeURIComponent(eventId)}`));
  } catch (failure) {
    trouble(failure, poll);
    return;
  }
  if (standing.state === "not_joined") {
    join(); // out of line (a pass that ran out unused, or away too long): join again, at the back
    return;
  }
  handle(standing);
  if (!(stream && stream.readyState === EventSource.OPEN)) schedulePoll(standing);
}

// The room's proof of work, solved in a worker so the page stays responsive.
function solve(challenge, bits) {
  return new Promise((resolve, reject) => {
    const worker = new Worker("/static/pow-worker.js");
    worker.onmessage = ({ data }) => {
      worker.terminate();
      resolve(data.nonce);
    };
    worker.onerror = (error) => {
      worker.terminate();
      reject(error);
    };
    worker.postMessage({ challenge, bits });
  });
}

// A registered buyer who has not confirmed their address yet: no place until they do.
function unverified() {
  stopPolling();
  closeStream();
  leaving = true;
  document.body.dataset.state = "unverified";
  stateLine.textContent = t("state.unverified");
  document.getElementById("unverified").hidden = false;
}

document.getElementById("resend-verification").addEventListener("click", async () => {
  const said = document.getElementById("resend-said");
  try {
    await api("/api/v1/auth/verify-email/resend", { method: "POST" });
    said.textContent = t("verify.sent");
  } catch (failure) {
    said.textContent = t("trouble.connection", { message: failure.message });
  }
});

// Joining again keeps the place; it also hands out a fresh ticket for the stream URL.
async function join(pow = null) {
  stopPolling();
  let standing;
  try {
    const body = pow ? { event_id: eventId, pow } : { event_id: eventId };
    ({ data: standing } = await api("/api/v1/queue/join", { method: "POST", body }));
  } catch (failure) {
    if (failure.code === "EMAIL_NOT_VERIFIED") {
      unverified();
      return;
    }
    if (failure.code === "PROOF_OF_WORK_REQUIRED" && failure.details) {
      const { challenge, bits } = failure.details;
      stateLine.textContent = t("state.proving");
      document.body.dataset.state = "proving";
      let nonce;
      try {
        nonce = await solve(challenge, bits);
      } catch (error) {
        trouble({ message: `${error.message || error}` }, join);
        return;
      }
      join({ challenge, nonce });
      return;
    }
    trouble(failure, join);
    return;
  }
  handle(standing);
  if (leaving) return;
  schedulePoll(standing); // until the stream is open, or for good without one
  openStream(standing.queue_ticket);
}

function closeStream() {
  clearTimeout(silenceTimer);
  if (stream) stream.close();
  stream = null;
}

function watchSilence() {
  clearTimeout(silenceTimer);
  silenceTimer = setTimeout(streamFailed, STREAM_SILENCE_MS);
}

// The stream is gone or stalled: poll meanwhile, then join again (a fresh ticket) and reopen.
function streamFailed() {
  closeStream();
  if (leaving) return;
  document.body.dataset.updates = "polling";
  poll();
  clearTimeout(retryTimer);
  retryTimer = setTimeout(join, STREAM_RETRY_MS[Math.min(streamFailures, STREAM_RETRY_MS.length - 1)]);
  streamFailures += 1;
}

function onStreamEvent(message) {
  watchSilence();
  streamFailures = 0;
  let standing;
  try {
    standing = JSON.parse(message.data);
  } catch {
    return;
  }
  if (STREAM_ENDS.has(standing.state)) closeStream(); // before the server ends it: no reconnecting
  if (standing.state === "not_joined") {
    join(); // out of line: join again, which reopens the stream
    return;
  }
  if (standing.state === "sold_out") schedulePoll(standing); // keep an eye on it, slowly
  handle(standing);
}

// A ticket the stream sent: the one the next stream opens with.
function onTicket(message) {
  watchSilence();
  try {
    streamTicket = JSON.parse(message.data).queue_ticket || streamTicket;
  } catch {
    // a garbled event: keep the ticket held
  }
}

// Reconnecting by itself, the browser would reuse the stream's URL, whose ticket may have run
// out meanwhile: reopen with the freshest ticket instead (after the same pause).
function reopenWithFreshTicket() {
  const ticket = streamTicket;
  closeStream();
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => openStream(ticket), STREAM_RETRY_MS[0]);
}

function openStream(ticket) {
  closeStream();
  if (!window.EventSource || !ticket) {
    document.body.dataset.updates = "polling";
    return;
  }
  streamTicket = streamOpenedWith = ticket;
  const query = new URLSearchParams({ event_id: eventId, ticket });
  stream = new EventSource(`/api/v1/queue/stream?${query}`);
  watchSilence(); // also bounds a stream that never opens
  stream.onopen = () => {
    document.body.dataset.updates = "stream";
    stopPolling(); // the stream keeps the place now
    watchSilence();
  };
  stream.addEventListener("standing", onStreamEvent);
  stream.addEventListener("admitted", onStreamEvent);
  stream.addEventListener("heartbeat", watchSilence);
  stream.addEventListener("ticket", onTicket);
  // CONNECTING: the browser reconnects by itself (with Last-Event-ID), unless the stream has
  // renewed the ticket since. CLOSED: refused for good (no stream route, a ticket that expired,
  // an error answer), so fall back.
  stream.onerror = () => {
    if (!stream) return;
    if (stream.readyState === EventSource.CLOSED) streamFailed();
    else if (streamTicket !== streamOpenedWith) reopenWithFreshTicket();
  };
}

async function showTitle() {
  try {
    const { data } = await api(`/api/v1/events/${encodeURIComponent(eventId)}`);
    document.getElementById("event-title").textContent = data.title;
    document.title = `${data.title} · ${t("page.title")}`;
  } catch {
    document.getElementById("event-title").textContent = t("room.kicker");
  }
}

// Giving up one's place on purpose: it goes to the people behind at once, and this page stops
// asking (a poll would otherwise join again).
async function leaveLine() {
  leaving = true;
  stopPolling();
  closeStream();
  clearTimeout(retryTimer);
  try {
    await api("/api/v1/queue/leave", { method: "POST", body: { event_id: eventId } });
  } catch (failure) {
    leaving = false;
    trouble(failure, leaveLine);
    return;
  }
  sessionStorage.removeItem(firstPositionKey);
  sessionStorage.removeItem(notifyingKey); // leaving the line drops it too
  errorLine.hidden = true;
  document.getElementById("standing").hidden = true;
  document.body.dataset.state = "left";
  stateLine.textContent = t("state.left");
}

// Told when it is my turn (POST /queue/notify): by Web Push on this device, where the browser can
// and the site offers it, or by e-mail. Kept for this tab's session, so the page says so again
// after a reload; the subscription itself lives in the room until my turn.
const notifyingKey = `booking-rush.notify.${eventId}`;
const said = document.getElementById("notify-said");

function notifying() {
  try {
    return JSON.parse(sessionStorage.getItem(notifyingKey));
  } catch {
    return null;
  }
}

function showNotifying() {
  const current = notifying();
  document.getElementById("notify-stop").hidden = !current;
  if (current) said.textContent = t(`notify.on_${current.channel}`, { minutes: formatted(current.minutes) });
}

async function subscribed(body) {
  const { data } = await api("/api/v1/queue/notify", {
    method: "POST",
    body: { event_id: eventId, lang: document.documentElement.lang, ...body },
  });
  sessionStorage.setItem(
    notifyingKey,
    JSON.stringify({ channel: data.channel, minutes: Math.round(data.claim_window_s / 60) }),
  );
  showNotifying();
}

function keyBytes(base64url) {
  const raw = atob(base64url.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

// The worker must be active before the push manager takes a subscription.
async function activeWorker() {
  const registration = await navigator.serviceWorker.register("/static/push-sw.js");
  const worker = registration.installing || registration.waiting;
  if (worker) {
    await new Promise((resolve) => {
      const activated = () => worker.state === "activated" && resolve();
      worker.addEventListener("statechange", activated);
      activated(); // it may have got there already
    });
  }
  return registration;
}

// A browser that reaches no push service may never answer: give up after a while, and say so.
function within(promise, ms, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer`)), ms)),
  ]);
}

async function notifyByPush(key) {
  if ((await Notification.requestPermission()) !== "granted") {
    said.textContent = t("notify.blocked");
    return;
  }
  try {
    const registration = await within(activeWorker(), SUBSCRIBE_WAIT_MS, "service worker");
    const asked = registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: keyBytes(key),
    });
    const subscription = await within(asked, SUBSCRIBE_WAIT_MS, "push service");
    await subscribed({ push: subscription.toJSON() });
  } catch (failure) {
    said.textContent = t("notify.failed", { message: failure.message || failure.name || `${failure}` });
  }
}

async function notifyByEmail() {
  try {
    await subscribed({ email: true });
  } catch (failure) {
    said.textContent = t("trouble.connection", { message: failure.message });
  }
}

async function stopNotices() {
  try {
    await api(`/api/v1/queue/notify?event_id=${encodeURIComponent(eventId)}`, { method: "DELETE" });
  } catch (failure) {
    said.textContent = t("trouble.connection", { message: failure.message });
    return;
  }
  sessionStorage.removeItem(notifyingKey);
  showNotifying();
  said.textContent = t("notify.off");
}

async function setUpNotices() {
  document.getElementById("notify-email").addEventListener("click", notifyByEmail);
  document.getElementById("notify-stop").addEventListener("click", stopNotices);
  showNotifying();
  if (!("serviceWorker" in navigator && "PushManager" in window && "Notification" in window)) return;
  let key = null;
  try {
    ({
      data: { vapid_public_key: key },
    } = await api("/api/v1/queue/notify/key"));
  } catch {
    return; // e-mail is still offered
  }
  if (!key) return;
  const button = document.getElementById("notify-push");
  button.hidden = false;
  button.addEventListener("click", () => notifyByPush(key));
}

document.getElementById("leave-line").addEventListener("click", leaveLine);
for (const button of document.querySelectorAll("[data-lang]")) {
  button.addEventListener("click", () =>
    choose(button.dataset.lang, () => {
      if (lastStanding && !leaving) show(lastStanding);
      showTitle();
      showNotifying();
    }),
  );
}
setUpNotices();

translatePage();
if (requireSignIn()) {
  stateLine.textContent = t("room.joining");
  document.getElementById("event-title").textContent = t("room.loading");
  showTitle();
  join();
}
