// The booking page: a show, a zone and a number of tickets, then Reserve (with the queue pass the
// waiting room handed out, when there is one); a late answer (202) is polled until it is final.
// The reservation is then paid for on its payment page (/pay/{booking_id}).
import { finalAnswer, retrying } from "/static/late-answer.js";
import { idFromPath, when } from "/static/page-basics.js";
import { renderBreakdown } from "/static/price-breakdown.js";
import { forgetPass, storedPass } from "/static/queue-pass.js";
import { api, requireSignIn } from "/static/session.js";

const RETRIES = 3; // automatic retries of one click (rate limited, connection lost), same key
const PASS_PROBLEMS = {
  QUEUE_PASS_REQUIRED: "This sale has a waiting room: take your place in line to book.",
  QUEUE_PASS_EXPIRED: "Your turn to book has run out. Join the line again.",
  QUEUE_PASS_INVALID: "Your waiting-room pass is not valid here. Join the line again.",
};

const eventId = idFromPath();
const form = document.getElementById("reserve-form");
const button = document.getElementById("reserve");
const statusLine = document.getElementById("book-status");
const showSelect = document.getElementById("show");
const zoneSelect = document.getElementById("zone");
const quantitySelect = document.getElementById("quantity");
const codeInput = document.getElementById("promo-code");
const quoteTable = document.getElementById("quote");
const quoteStatus = document.getElementById("quote-status");
let shows = [];
let quoting = 0; // the newest quote asked: an older answer arriving late is dropped


function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16)); // randomUUID needs a secure context
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function selectedShow() {
  return shows.find((show) => show.show_id === showSelect.value);
}

function renderZones() {
  const show = selectedShow();
  const previous = zoneSelect.value;
  zoneSelect.replaceChildren(
    ...(show ? show.zones : []).map((zone) => {
      const left = zone.available_seats === 0 ? "sold out" : `${zone.available_seats} left`;
      const option = new Option(`${zone.name} · ${zone.price} ${zone.currency || ""} · ${left}`, zone.id);
      option.disabled = zone.available_seats === 0;
      option.selected = zone.id === previous && !option.disabled;
      return option;
    }),
  );
}

function renderShows(availability) {
  const previous = showSelect.value;
  shows = availability.shows;
  showSelect.replaceChildren(
    ...shows.map((show) => new Option(when(show.show_date), show.show_id, false, show.show_id === previous)),
  );
  renderZones();
}

async function loadSeats() {
  const { data } = await api(`/api/v1/events/${encodeURIComponent(eventId)}/availability`);
  renderShows(data);
}

function hideProblem() {
  document.getElementById("book-error").hidden = true;
}

function showProblem(message, backToRoom = false) {
  document.getElementById("book-error-text").textContent = message;
  const link = document.getElementById("back-to-room");
  link.href = `/waiting-room/${encodeURIComponent(eventId)}`;
  link.hidden = !backToRoom;
  document.getElementById("book-error").hidden = false;
}

function explain(failure) {
  if (failure.status === 401 && !requireSignIn()) return; // signed out: sign in, then come back
  if (failure.code in PASS_PROBLEMS) {
    forgetPass(eventId);
    showProblem(PASS_PROBLEMS[failure.code], true);
  } else if (failure.code === "INSUFFICIENT_STOCK") {
    const left = failure.details && failure.details.remaining;
    showProblem(
      left ? `Not enough seats: ${left} left in this zone.` : "Sold out: this zone has no seats left.",
    );
    loadSeats().catch(() => {});
  } else if (failure.code === "RATE_LIMITED") {
    showProblem(`Too many requests; try again in ${failure.retryAfter || 1} s.`);
  } else {
    showProblem(failure.message || "The reservation failed; try again.");
  }
}

// One click's reservation; its retries carry the same Idempotency-Key, so at most one is applied.
async function reserve(body, key) {
  const send = async () => {
    const headers = { "Idempotency-Key": key };
    const pass = storedPass(eventId);
    if (pass) headers["X-Queue-Pass"] = pass.pass;
    const { data } = await api("/api/v1/bookings/reserve", { method: "POST", body, headers });
    return await finalAnswer(data, () => {
      statusLine.textContent = "Reserving… (waiting for the answer)";
    });
  };
  return retrying(send, { tries: RETRIES + 1, onWait: busy });
}

function busy(_failure, seconds) {
  statusLine.textContent = `Busy; trying again in ${seconds} s…`;
}

function currentBody() {
  const body = {
    event_id: eventId,
    show_id: showSelect.value,
    zone_id: zoneSelect.value,
    quantity: Number(quantitySelect.value),
  };
  const code = codeInput.value.trim();
  if (code) body.promo_code = code;
  return body;
}

// The price before reserving: the quote route decides nothing (no seat, early-bird place or
// code use is taken), so it is asked again whenever the choice changes.
async function quote() {
  const asked = (quoting += 1);
  if (!zoneSelect.value || !quantitySelect.value) return;
  try {
    const { data } = await api("/api/v1/bookings/quote", { method: "POST", body: currentBody() });
    if (asked !== quoting) return;
    renderBreakdown(quoteTable, data.price, data.quantity);
    quoteStatus.textContent = codeInput.value.trim() ? "Code applied." : "";
  } catch (failure) {
    if (asked !== quoting) return;
    quoteTable.hidden = true;
    quoteStatus.textContent = failure.code && failure.code.startsWith("PROMO_CODE") ? failure.message : "";
  }
}

function showBooking(booking) {
  const zone = selectedShow().zones.find((z) => z.id === booking.zone_id);
  document.getElementById("booking-id").textContent = booking.booking_id;
  document.getElementById("booking-zone").textContent = zone ? zone.name : booking.zone_id;
  document.getElementById("booking-quantity").textContent = String(booking.quantity);
  document.getElementById("booking-total").textContent = `${booking.total_price} ${booking.currency || ""}`;
  if (booking.price) renderBreakdown(document.getElementById("booking-price"), booking.price, booking.quantity);
  document.getElementById("booking-expires").textContent = when(booking.expires_at);
  document.getElementById("pay-now").href = `/pay/${encodeURIComponent(booking.booking_id)}`;
  document.getElementById("confirmation").hidden = false;
  statusLine.textContent = "Reserved.";
}

form.addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  hideProblem();
  if (!zoneSelect.value) {
    showProblem("Pick a zone with seats left.");
    return;
  }
  const body = currentBody();
  button.disabled = true;
  statusLine.textContent = "Reserving…";
  try {
    showBooking(await reserve(body, newIdempotencyKey()));
    loadSeats().catch(() => {}); // the seats left, after this booking
  } catch (failure) {
    statusLine.textContent = "";
    explain(failure);
  } finally {
    button.disabled = false;
  }
});

// A compensation voucher taken off the reservation just made (before paying for it).
document.getElementById("voucher-form").addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  const status = document.getElementById("voucher-status");
  const bookingId = document.getElementById("booking-id").textContent;
  const code = document.getElementById("voucher-code").value.trim();
  if (!code) return;
  status.textContent = "Applying…";
  try {
    const { data } = await api(`/api/v1/bookings/${encodeURIComponent(bookingId)}/voucher`, {
      method: "POST",
      body: { code },
    });
    document.getElementById("booking-total").textContent = `${data.total_price} ${data.currency || ""}`;
    renderBreakdown(document.getElementById("booking-price"), data.price, data.quantity);
    status.textContent = "Voucher applied.";
  } catch (failure) {
    status.textContent = failure.message || "The voucher could not be applied.";
  }
});

showSelect.addEventListener("change", () => {
  renderZones();
  quote();
});
zoneSelect.addEventListener("change", quote);
quantitySelect.addEventListener("change", quote);
codeInput.addEventListener("change", quote);

async function start() {
  let event;
  try {
    const detail = api(`/api/v1/events/${encodeURIComponent(eventId)}`);
    [{ data: event }] = await Promise.all([detail, loadSeats()]);
  } catch (failure) {
    statusLine.textContent = failure.status === 404 ? "This event is not on sale." : "";
    if (failure.status !== 404) explain(failure);
    return;
  }
  document.getElementById("event-title").textContent = event.title;
  document.title = `${event.title} · Book · Booking Rush`;
  for (let n = 1; n <= event.max_tickets_per_user; n += 1) quantitySelect.append(new Option(String(n), String(n)));
  statusLine.textContent = "Pick a show, a zone and how many tickets.";
  form.hidden = false;
  quote();
}

if (requireSignIn()) start();
