// The waiting room page: joins the event's line and shows the place, the people ahead and an
// estimated wait, live from the position stream (SSE) or, where that is missing or fails, by
// polling /queue/status. On admission it keeps the queue pass and goes on to the booking page.
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
// The stream URL's ticket lives minutes: the stream sends a fresh one before it runs out, and a
// stream reopened later uses the freshest held.
let streamTicket = null;
let streamOpenedWith = null;

function minutesText(minutes) {
  return minutes < 60 ? `${minutes}` : `${Math.floor(minutes / 60)} h ${minutes % 60}`;
}

// The wait as a range ("about 4–6 minutes"), or why there is none to say.
function waitText(standing) {
  switch (standing.eta_status) {
    case "paused":
      return "paused: nobody is let in right now, your place is kept";
    case "not_open":
      return opensAt ? `not open yet (opens at ${new Date(opensAt).toLocaleString()})` : "not open yet";
    case "sold_out":
      return "sold out";
    case "closed":
      return "the room is closed";
    case "estimate":
      break;
    default:
      return "unknown";
  }
  const [low, high] = standing.eta_range_seconds;
  if (high < 60) return "less than a minute";
  const [from, to] = [Math.max(1, Math.round(low / 60)), Math.max(1, Math.round(high / 60))];
  if (from === to) return `about ${minutesText(from)} minute${from === 1 ? "" : "s"}`;
  return `about ${minutesText(from)}–${minutesText(to)} minutes`;
}

function describe(standing) {
  if (standing.opens_at) opensAt = standing.opens_at;
  switch (standing.state) {
    case "waiting":
      return standing.admission_rate_per_min > 0
        ? "You are in line. Keep this page open: it moves on to booking when it is your turn."
        : "You are in line. Nobody has been let in during the last minute (the sale may be paused); " +
            "your place is kept.";
    case "prequeue":
      return (
        `The sale opens ${opensAt ? "at " + new Date(opensAt).toLocaleString() : "soon"}. ` +
        "Everyone who joins before it opens is given a place in a random order when it opens: " +
        "there is no need to rush."
      );
    case "paused":
      return "The sale is paused. Your place in line is kept.";
    case "closed":
      return "The waiting room is closed: nobody is being let in right now.";
    case "sold_out":
      return "Sold out: every seat is sold or held. If held seats come back, the line moves again.";
    case "admitted":
      return "It is your turn…";
    default:
      return `The line says: ${standing.state}`;
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

function show(standing) {
  errorLine.hidden = true;
  stateLine.textContent = describe(standing);
  const inLine = ["waiting", "paused", "prequeue"].includes(standing.state);
  document.getElementById("standing").hidden = !inLine;
  document.body.dataset.state = standing.state;
  if (!inLine) return;
  const number = (value, unknown = "–") => (value === null || value === undefined ? unknown : `${value}`);
  document.getElementById("position").textContent = number(standing.position, "drawn at opening");
  document.getElementById("ahead").textContent = number(standing.ahead);
  document.getElementById("eta").textContent = waitText(standing);
  document.getElementById("waiting").textContent = number(standing.waiting);
  document.getElementById("rate").textContent = number(standing.admission_rate_per_min);
  showProgress(standing.position);
}

function leave(message) {
  leaving = true;
  stopPolling();
  closeStream();
  clearTimeout(retryTimer);
  sessionStorage.removeItem(firstPositionKey);
  stateLine.textContent = message;
  location.assign(bookingPage);
}

// One standing, from a join, a poll or the stream.
function handle(standing) {
  if (leaving) return;
  if (standing.state === "admitted" && standing.pass) {
    keepPass(eventId, standing.pass, standing.pass_expires_at);
    leave("It is your turn! Taking you to booking…");
  } else if (standing.state === "admitted") {
    poll(); // admitted without the pass in hand: the status answer carries it
  } else if (standing.state === "open") {
    forgetPass(eventId); // no line now: booking needs no pass
    leave("There is no line right now. Taking you to booking…");
  } else {
    show(standing);
  }
}

function trouble(failure, retry) {
  if (failure.status === 401 && !requireSignIn()) return; // signed out meanwhile: sign in, come back
  if (failure.status === 404) {
    stopPolling();
    closeStream();
    stateLine.textContent = "This event is not on sale.";
    return;
  }
  errorLine.textContent =
    failure.code === "RATE_LIMITED"
      ? "Many people are asking at once; trying again shortly. Your place is kept."
      : `Connection trouble (${failure.message}); trying again. Your place is kept.`;
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

// Joining again keeps the place; it also hands out a fresh ticket for the stream URL.
async function join(pow = null) {
  stopPolling();
  let standing;
  try {
    const body = pow ? { event_id: eventId, pow } : { event_id: eventId };
    ({ data: standing } = await api("/api/v1/queue/join", { method: "POST", body }));
  } catch (failure) {
    if (failure.code === "PROOF_OF_WORK_REQUIRED" && failure.details) {
      const { challenge, bits } = failure.details;
      stateLine.textContent = "Checking this browser before it takes a place in line…";
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
    document.title = `${data.title} · Waiting room · Booking Rush`;
  } catch {
    document.getElementById("event-title").textContent = "Waiting room";
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
  errorLine.hidden = true;
  document.getElementById("standing").hidden = true;
  document.body.dataset.state = "left";
  stateLine.textContent = "You left the line: your place went to the people behind you.";
}

document.getElementById("leave-line").addEventListener("click", leaveLine);

if (requireSignIn()) {
  showTitle();
  join();
}
