// The payment page of one booking: what is held and for how long, a form for the means of payment,
// then the payment followed until the provider's answer: success goes on to the e-ticket, a
// failure says the seats went back on sale. A booking whose payment has already begun (another
// tab, a connection lost mid-payment) is followed, never paid for again.
import { describe } from "/static/booking-facts.js";
import { finalAnswer, pause, retrying } from "/static/late-answer.js";
import { idFromPath, when } from "/static/page-basics.js";
import { renderBreakdown } from "/static/price-breakdown.js";
import { api, requireSignIn } from "/static/session.js";

const FOLLOW_MS = 1000; // the charge runs in the background: ask how it stands about once a second
const SLOW_MS = 30000; // after this, say that the bank is slow (the server bounds the wait itself)
const RETRIES = 3; // of one Pay click; safe, as a booking has one payment: a retry names the same
const STATES = {
  pending: "waiting for the bank",
  processing: "being charged",
  success: "paid",
  failed: "failed",
  refunded: "refunded",
};
const FAILURES = {
  card_declined: "The card was declined.",
  payment_timeout: "The bank did not confirm the payment in time.",
};

const bookingId = idFromPath();
const ticketPage = `/tickets/${encodeURIComponent(bookingId)}`;
const statusLine = document.getElementById("pay-status");
const form = document.getElementById("pay-form");
const button = document.getElementById("pay");
const following = document.getElementById("following");
const timeLeft = document.getElementById("time-left");
let booking = null;
let countdown = null;

const onlyDigits = (value) => value.replace(/[\s-]/g, "");
const noSpaces = (value) => value.replace(/\s/g, "");
const trimmed = (value) => value.trim();

function cleanExpiry(value) {
  const match = /^(\d{1,2})\s*\/?\s*(\d{2})$/.exec(value.trim());
  return match ? `${match[1].padStart(2, "0")}/${match[2]}` : value.trim();
}

function checkExpiry(value) {
  const match = /^(0[1-9]|1[0-2])\/(\d{2})$/.exec(value);
  if (!match) return "month/year, e.g. 08/29";
  const now = new Date();
  const [year, month] = [2000 + Number(match[2]), Number(match[1])];
  return year > now.getFullYear() || (year === now.getFullYear() && month >= now.getMonth() + 1)
    ? true
    : "this card has expired";
}

// Method -> its fields: the input, how its value is tidied, and the rule the API holds it to.
const FIELDS = {
  card: {
    card_number: {
      input: "card-number",
      clean: onlyDigits,
      check: (v) => /^\d{12,19}$/.test(v) || "12 to 19 digits",
    },
    expiry: { input: "card-expiry", clean: cleanExpiry, check: checkExpiry },
    cvc: { input: "card-cvc", clean: trimmed, check: (v) => /^\d{3,4}$/.test(v) || "3 or 4 digits" },
  },
  bank_transfer: {
    account: {
      input: "bank-account",
      clean: noSpaces,
      check: (v) => /^[A-Za-z0-9]{6,34}$/.test(v) || "6 to 34 letters and digits",
    },
  },
  e_wallet: {
    wallet_id: {
      input: "wallet-id",
      clean: trimmed,
      check: (v) => /^[A-Za-z0-9@.+_-]{4,64}$/.test(v) || "4 to 64 letters, digits or @ . + _ -",
    },
  },
};

function chosenMethod() {
  return form.querySelector("input[name=method]:checked").value;
}

function showMethod() {
  const method = chosenMethod();
  for (const fields of form.querySelectorAll(".method-fields")) {
    fields.hidden = fields.dataset.method !== method;
  }
  showFieldErrors({});
}

function showFieldErrors(problems) {
  let first = null;
  for (const line of form.querySelectorAll(".field-error")) {
    const message = problems[line.dataset.field];
    line.textContent = message || "";
    line.hidden = !message;
    if (message && !first) first = line.dataset.field;
  }
  const spec = first && FIELDS[chosenMethod()][first];
  if (spec) document.getElementById(spec.input).focus();
}

// The chosen method's details, tidied; null (and the problems shown) when one is not right.
function readDetails(method) {
  const details = {};
  const problems = {};
  for (const [field, spec] of Object.entries(FIELDS[method])) {
    const value = spec.clean(document.getElementById(spec.input).value);
    const verdict = spec.check(value);
    if (verdict !== true) problems[field] = verdict;
    details[field] = value;
  }
  showFieldErrors(problems);
  return Object.keys(problems).length ? null : details;
}

function hideProblem() {
  document.getElementById("pay-problem").hidden = true;
}

function problem(message, next = null) {
  stopCountdown();
  form.hidden = true;
  following.hidden = true;
  statusLine.textContent = "";
  document.getElementById("pay-problem-text").textContent = message;
  const link = document.getElementById("pay-next");
  link.hidden = !next;
  if (next) {
    link.href = next.href;
    link.textContent = next.text;
  }
  document.getElementById("pay-problem").hidden = false;
}

const bookAgain = () =>
  booking && { href: `/book/${encodeURIComponent(booking.event_id)}`, text: "Book again" };
const myBookings = () => ({ href: "/my-bookings", text: "My bookings" });

function expired() {
  problem("Your reservation expired: the seats went back on sale.", bookAgain());
}

function tick() {
  const left = Math.max(0, Math.floor((Date.parse(booking.expires_at) - Date.now()) / 1000));
  timeLeft.textContent = `(${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")} left)`;
  if (left === 0 && !form.hidden) expired(); // the server says so too, from now on
}

function startCountdown() {
  stopCountdown();
  document.getElementById("booking-expires").textContent = when(booking.expires_at);
  document.getElementById("held-row").hidden = false;
  tick();
  countdown = setInterval(tick, 1000);
}

function stopCountdown() {
  clearInterval(countdown);
  countdown = null;
  document.getElementById("held-row").hidden = true;
}

async function showSummary() {
  document.getElementById("booking-quantity").textContent = String(booking.quantity);
  document.getElementById("booking-total").textContent = `${booking.total_price} ${booking.currency}`;
  renderBreakdown(document.getElementById("booking-price"), booking.price, booking.quantity);
  document.getElementById("summary").hidden = false;
  const facts = await describe(booking);
  document.getElementById("event-title").textContent = facts.title;
  document.getElementById("booking-show").textContent = facts.show;
  document.getElementById("booking-zone").textContent = facts.zone;
  document.title = `${facts.title} · Pay · Booking Rush`;
}

function goToTicket() {
  stopCountdown();
  statusLine.textContent = "Paid. Taking you to your ticket…";
  location.replace(ticketPage);
}

function failed(payment) {
  const reason = payment.failure_reason;
  const named = reason ? `The payment failed (${reason.replaceAll("_", " ")}).` : "The payment failed.";
  const why = FAILURES[reason] || named;
  const late =
    reason === "payment_timeout" ? " Should the bank still charge you, that is refunded in full." : "";
  problem(`${why} Your seats were released.${late}`, bookAgain());
}

function showPayment(payment) {
  document.getElementById("payment-masked").textContent = payment.masked || payment.method;
  document.getElementById("payment-amount").textContent = payment.amount;
  const attempts = payment.attempts > 1 ? ` (attempt ${payment.attempts})` : "";
  const state = STATES[payment.status] || payment.status;
  document.getElementById("payment-state").textContent = `${state}${attempts}`;
}

// Until the payment is final: success -> the ticket; failed -> say so; refunded -> say so.
async function follow(paymentId, known = null) {
  form.hidden = true;
  following.hidden = false;
  statusLine.textContent = "Following your payment…";
  const started = Date.now();
  let payment = known;
  for (;;) {
    if (payment) {
      showPayment(payment);
      if (payment.status === "success") return goToTicket();
      if (payment.status === "failed") return failed(payment);
      if (payment.status === "refunded") {
        const refund = payment.refund;
        const refunded = refund ? ` ${refund.amount} went back to ${payment.masked}.` : "";
        return problem(`This payment was refunded.${refunded}`, myBookings());
      }
      await pause(FOLLOW_MS);
    }
    try {
      ({ data: payment } = await api(`/api/v1/payments/${encodeURIComponent(paymentId)}`));
      const slow = Date.now() - started > SLOW_MS;
      statusLine.textContent = slow ? "Still waiting for the bank's answer…" : "Following your payment…";
    } catch (failure) {
      if (failure.status === 401 && !requireSignIn()) return;
      if (failure.status === 404) return problem("This payment could not be found.", myBookings());
      // Lost connection, a busy moment: the payment goes on without us; keep asking.
      statusLine.textContent =
        failure.code === "RATE_LIMITED"
          ? "Busy; asking again shortly…"
          : "Connection trouble; still following your payment…";
      await pause(1000 * (failure.retryAfter || 2));
    }
  }
}

// Paying twice names one payment (its id derives from the booking), so a lost answer may be asked again.
async function begin(body) {
  const send = async () => finalAnswer((await api("/api/v1/payments", { method: "POST", body })).data);
  return retrying(send, {
    tries: RETRIES + 1,
    onWait: (_failure, seconds) => {
      statusLine.textContent = `Busy; trying again in ${seconds} s…`;
    },
  });
}

// The hold's deadline once the payment began: the longer paying deadline replaces it.
async function refreshHold() {
  try {
    const { data } = await api(`/api/v1/bookings/${encodeURIComponent(bookingId)}`);
    booking = data;
    if (countdown) startCountdown();
  } catch {
    // The old deadline stays shown; the payment is followed either way.
  }
}

function explain(failure) {
  if (failure.status === 401 && !requireSignIn()) return;
  // A refused detail (bad input, 400; an expired card, 402): shown at its field.
  if ((failure.code === "VALIDATION_ERROR" || failure.code === "PAYMENT_FAILED") && failure.details) {
    const problems = {};
    for (const [field, message] of Object.entries(failure.details)) {
      problems[field.replace(/^details\./, "")] = message; // "details.card_number" -> its input
    }
    showFieldErrors(problems);
    statusLine.textContent = "Check the highlighted details.";
  } else if (failure.code === "RESERVATION_EXPIRED") {
    expired();
  } else if (failure.code === "INVALID_STATUS_TRANSITION") {
    start(); // paid, cancelled or expired meanwhile (another tab): show where it stands now
  } else if (failure.status === 404) {
    problem("This booking could not be found.", myBookings());
  } else {
    statusLine.textContent = "";
    document.getElementById("pay-problem-text").textContent =
      failure.message || "The payment could not be started; try again.";
    document.getElementById("pay-next").hidden = true;
    document.getElementById("pay-problem").hidden = false; // the form stays: the buyer may try again
  }
}

form.addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  hideProblem();
  const method = chosenMethod();
  const details = readDetails(method);
  if (!details) {
    statusLine.textContent = "Check the highlighted details.";
    return;
  }
  if (Date.parse(booking.expires_at) <= Date.now()) {
    expired();
    return;
  }
  button.disabled = true;
  statusLine.textContent = "Starting the payment…";
  try {
    const payment = await begin({ booking_id: bookingId, method, details });
    refreshHold();
    await follow(payment.payment_id, payment);
  } catch (failure) {
    explain(failure);
  } finally {
    button.disabled = false;
  }
});

for (const radio of form.querySelectorAll("input[name=method]")) {
  radio.addEventListener("change", showMethod);
}
for (const input of form.querySelectorAll("input:not([type=radio])")) {
  input.addEventListener("input", () => {
    const line = input.closest(".method-fields").querySelector(`.field-error[data-field="${input.name}"]`);
    if (line) line.hidden = true;
  });
}

function offer() {
  startCountdown();
  form.hidden = false;
  statusLine.textContent = "Choose how to pay.";
}

async function start() {
  hideProblem();
  try {
    ({ data: booking } = await api(`/api/v1/bookings/${encodeURIComponent(bookingId)}`));
  } catch (failure) {
    if (failure.status === 401 && !requireSignIn()) return;
    statusLine.textContent = "";
    problem(failure.status === 404 ? "This booking could not be found." : failure.message, myBookings());
    return;
  }
  showSummary().catch(() => {});
  const live = Date.parse(booking.expires_at) > Date.now();
  if (booking.status === "confirmed") {
    goToTicket();
  } else if (booking.payment_id) {
    if (booking.status === "paying") startCountdown();
    await follow(booking.payment_id); // begun before (another tab, a lost connection): follow it
  } else if (booking.status === "reserved" && live) {
    offer();
  } else if (booking.status === "reserved" || booking.status === "expired") {
    expired();
  } else if (booking.status === "cancelled") {
    problem("This booking was cancelled; its seats went back on sale.", bookAgain());
  } else {
    problem(`This booking is ${booking.status}: there is nothing to pay.`, myBookings());
  }
}

if (requireSignIn()) start();
