// The user's bookings, newest first, with what each allows: a reservation can be paid for or given
// back, a payment in progress followed, a confirmed booking's ticket shown or a refund asked for
// (its share follows the days left before the show; an organizer approves it).
import { describe } from "/static/booking-facts.js";
import { finalAnswer } from "/static/late-answer.js";
import { when } from "/static/page-basics.js";
import { api, requireSignIn } from "/static/session.js";

const STATES = {
  reserved: "Reserved, awaiting payment",
  paying: "Payment in progress",
  confirmed: "Confirmed",
  cancelled: "Cancelled",
  expired: "Expired",
  refunded: "Refunded",
};
const CANCEL_REASONS = { payment_failed: "the payment failed, so the seats were released" };
const REFUND_STATES = {
  requested: "requested, awaiting approval",
  approved: "approved, on its way",
  refunded: "paid back",
};

const list = document.getElementById("bookings");
const statusLine = document.getElementById("bookings-status");
const pageNote = document.getElementById("bookings-note");

function flash(message, isError = false) {
  pageNote.textContent = message;
  pageNote.classList.toggle("error", isError);
  pageNote.hidden = !message;
}

function rowNote(item, message, isError = false) {
  const line = item.querySelector(".booking-note");
  line.textContent = message;
  line.classList.toggle("error", isError);
  line.hidden = !message;
}

function link(cls, href, text) {
  const anchor = document.createElement("a");
  anchor.className = `button ${cls}`;
  anchor.href = href;
  anchor.textContent = text;
  return anchor;
}

function button(cls, text, onClick) {
  const control = document.createElement("button");
  control.type = "button";
  control.className = cls;
  control.textContent = text;
  control.addEventListener("click", () => onClick(control));
  return control;
}

// A reservation past its time is expired, even before the sweeper has said so.
const live = (booking) => Date.parse(booking.expires_at) > Date.now();

function stateOf(booking) {
  return booking.status === "reserved" && !live(booking) ? "expired" : booking.status;
}

function refundText(refund) {
  const state = REFUND_STATES[refund.status] || refund.status;
  return `Refund ${state}: ${refund.amount} (${refund.percent} % of the price).`;
}

function refusalText(failure) {
  return failure.details && failure.details.percent === 0
    ? "No refund: the show is less than 3 days away."
    : `No refund: ${failure.message}`;
}

async function cancel(item, booking, control) {
  // Two clicks: giving seats back cannot be undone, and in a rush they are gone at once.
  if (control.dataset.armed !== "yes") {
    control.dataset.armed = "yes";
    control.textContent = "Yes, cancel it";
    rowNote(item, "Cancel this booking? Its seats go back on sale.");
    return;
  }
  control.disabled = true;
  rowNote(item, "Cancelling…");
  try {
    const { data } = await api(`/api/v1/bookings/${encodeURIComponent(booking.booking_id)}/cancel`, {
      method: "POST",
    });
    await finalAnswer(data);
    flash("Booking cancelled; its seats went back on sale.");
  } catch (failure) {
    if (failure.status === 401 && !requireSignIn()) return;
    flash(`The booking could not be cancelled: ${failure.message}`, true);
  }
  await load(); // the list as it stands now, whichever way it went
}

async function requestRefund(item, booking, control) {
  control.disabled = true;
  rowNote(item, "Asking for a refund…");
  try {
    const { data } = await api(`/api/v1/payments/${encodeURIComponent(booking.payment_id)}/refund`, {
      method: "POST",
    });
    const payment = await finalAnswer(data);
    control.remove();
    rowNote(item, refundText(payment.refund));
  } catch (failure) {
    if (failure.status === 401 && !requireSignIn()) return;
    if (failure.code === "REFUND_NOT_ALLOWED") {
      control.remove();
      rowNote(item, refusalText(failure), true);
    } else {
      control.disabled = false;
      rowNote(item, `The refund could not be asked for: ${failure.message}`, true);
    }
  }
}

function addActions(item, booking) {
  const id = encodeURIComponent(booking.booking_id);
  const actions = item.querySelector(".actions");
  const state = stateOf(booking);
  if (state === "reserved") {
    actions.append(
      link("pay", `/pay/${id}`, "Pay"),
      button("cancel", "Cancel", (control) => cancel(item, booking, control)),
    );
  } else if (state === "paying") {
    actions.append(link("see-payment", `/pay/${id}`, "See payment"));
  } else if (state === "confirmed") {
    actions.append(link("ticket", `/tickets/${id}`, "Ticket"));
    if (booking.payment_id) {
      actions.append(button("refund", "Request refund", (control) => requestRefund(item, booking, control)));
    }
  }
}

// A confirmed booking's refund, asked for earlier: said, and not offered again.
async function showRefund(item, booking) {
  try {
    const { data: payment } = await api(`/api/v1/payments/${encodeURIComponent(booking.payment_id)}`);
    if (!payment.refund) return;
    const offer = item.querySelector(".refund");
    if (offer) offer.remove();
    rowNote(item, refundText(payment.refund));
  } catch {
    // The offer stays; asking again answers the refund already asked for.
  }
}

function extraText(booking) {
  const state = stateOf(booking);
  if (state === "reserved" || state === "paying") return `Held until ${when(booking.expires_at)}`;
  if (state === "confirmed" && booking.ticket_code) return `Ticket ${booking.ticket_code}`;
  if (state === "cancelled" && booking.cancel_reason) {
    const reason = CANCEL_REASONS[booking.cancel_reason] || booking.cancel_reason.replaceAll("_", " ");
    return `Cancelled: ${reason}.`;
  }
  return "";
}

function render(booking) {
  const item = document.getElementById("booking-template").content.firstElementChild.cloneNode(true);
  const state = stateOf(booking);
  item.dataset.bookingId = booking.booking_id;
  item.dataset.status = state;
  const badge = item.querySelector(".state");
  badge.textContent = STATES[state] || state;
  badge.classList.add(`state-${state}`);
  const tickets = `${booking.quantity} ticket${booking.quantity === 1 ? "" : "s"} · ${booking.total_price} ${booking.currency || ""}`;
  item.querySelector(".booking-event").textContent = "…";
  item.querySelector(".booking-meta").textContent = tickets;
  item.querySelector(".booking-extra").textContent = extraText(booking);
  addActions(item, booking);
  describe(booking).then((facts) => {
    item.querySelector(".booking-event").textContent = facts.title;
    item.querySelector(".booking-meta").textContent = `${facts.show} · ${facts.zone} · ${tickets}`;
  });
  if (state === "confirmed" && booking.payment_id) showRefund(item, booking);
  return item;
}

async function load() {
  let bookings;
  try {
    ({ data: bookings } = await api("/api/v1/bookings"));
  } catch (failure) {
    if (failure.status === 401 && !requireSignIn()) return;
    statusLine.textContent = `Could not load your bookings: ${failure.message}`;
    return;
  }
  list.replaceChildren(...bookings.map(render));
  statusLine.textContent =
    bookings.length === 0 ? "No bookings yet: pick an event to book." : `${bookings.length} booking(s)`;
}

if (requireSignIn()) load();
