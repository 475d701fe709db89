// The e-ticket page of one booking: confirm it (POST /bookings/{id}/confirm answers the booking
// with its ticket code once the payment succeeded) and show the code; otherwise say why not and
// where to go: unpaid -> pay, failed or expired -> book again.
import { describe } from "/static/booking-facts.js";
import { retrying } from "/static/late-answer.js";
import { idFromPath } from "/static/page-basics.js";
import { renderBreakdown } from "/static/price-breakdown.js";
import { api, requireSignIn } from "/static/session.js";

// The payment's success confirms the booking in the same step, so "in progress" lasts moments
// (a payment still being charged, a page opened early): ask again a few times.
const IN_PROGRESS_TRIES = 10;
const IN_PROGRESS_WAIT_MS = 1500;

const bookingId = idFromPath();
const payPage = `/pay/${encodeURIComponent(bookingId)}`;
const statusLine = document.getElementById("ticket-status");
const MY_BOOKINGS = { href: "/my-bookings", text: "My bookings" };

function problem(message, next = null) {
  statusLine.textContent = "";
  document.getElementById("ticket-problem-text").textContent = message;
  const link = document.getElementById("ticket-next");
  link.hidden = !next;
  if (next) {
    link.href = next.href;
    link.textContent = next.text;
  }
  document.getElementById("ticket-problem").hidden = false;
}

async function showTitleOf(booking) {
  const facts = await describe(booking);
  document.getElementById("event-title").textContent = facts.title;
  document.title = `${facts.title} · Ticket · Booking Rush`;
  return facts;
}

async function showTicket(booking) {
  document.getElementById("ticket-code").textContent = booking.ticket_code;
  document.getElementById("ticket-quantity").textContent = String(booking.quantity);
  document.getElementById("ticket-total").textContent = `${booking.total_price} ${booking.currency}`;
  renderBreakdown(document.getElementById("ticket-price"), booking.price, booking.quantity);
  document.getElementById("ticket-booking").textContent = booking.booking_id;
  document.getElementById("ticket").hidden = false;
  statusLine.textContent = "Confirmed. Enjoy the show!";
  const facts = await showTitleOf(booking);
  document.getElementById("ticket-show").textContent = facts.show;
  document.getElementById("ticket-zone").textContent = facts.zone;
}

// Booking facts for the problem pages (the event's title, the "book again" link), best effort.
async function bookingOrNull() {
  try {
    const { data } = await api(`/api/v1/bookings/${encodeURIComponent(bookingId)}`);
    showTitleOf(data).catch(() => {});
    return data;
  } catch {
    return null;
  }
}

async function bookAgain() {
  const booking = await bookingOrNull();
  return booking
    ? { href: `/book/${encodeURIComponent(booking.event_id)}`, text: "Book again" }
    : { href: "/events", text: "See the events" };
}

async function explain(failure) {
  switch (failure.code) {
    case "PAYMENT_REQUIRED":
      bookingOrNull();
      problem("This booking has not been paid for yet.", { href: payPage, text: "Pay now" });
      break;
    case "PAYMENT_IN_PROGRESS":
      bookingOrNull();
      problem("The payment is still being processed.", { href: payPage, text: "Follow the payment" });
      break;
    case "PAYMENT_FAILED":
      problem("The payment failed, so the seats were released.", await bookAgain());
      break;
    case "RESERVATION_EXPIRED":
      problem("Your reservation expired unpaid; the seats went back on sale.", await bookAgain());
      break;
    case "NOT_FOUND":
      problem("This booking could not be found.", MY_BOOKINGS);
      break;
    default:
      bookingOrNull();
      problem(failure.message || "The ticket could not be shown.", MY_BOOKINGS);
  }
}

// Confirming changes nothing, so asking again is safe (also after a lost connection).
async function confirm() {
  const path = `/api/v1/bookings/${encodeURIComponent(bookingId)}/confirm`;
  return retrying(async () => (await api(path, { method: "POST" })).data, {
    tries: IN_PROGRESS_TRIES,
    transient: (failure) => ["PAYMENT_IN_PROGRESS", "RATE_LIMITED"].includes(failure.code),
    waitS: IN_PROGRESS_WAIT_MS / 1000,
    onWait: (failure) => {
      const inProgress = failure.code === "PAYMENT_IN_PROGRESS";
      statusLine.textContent = inProgress ? "The payment is still being processed…" : "Trying again…";
    },
  });
}

async function start() {
  let booking;
  try {
    booking = await confirm();
  } catch (failure) {
    if (failure.status === 401 && !requireSignIn()) return;
    await explain(failure);
    return;
  }
  await showTicket(booking);
}

if (requireSignIn()) start();
