// The events page: published events with their shows, zones, prices and live availability
// (read from the sale Redis by /events/{id}/availability), each linked to its waiting room. At
// /t/<slug>/events, one storefront's.
import { storefront, when } from "/static/page-basics.js";
import { api, currentSession, signOut } from "/static/session.js";

const PER_PAGE = 10;
const REFRESH_MS = 15000; // live seats: one request per listed event per refresh, well inside the limits

const params = new URLSearchParams(location.search);
const shop = storefront();
let page = Math.max(1, Number.parseInt(params.get("page"), 10) || 1);
let category = params.get("category") || "";
let refreshTimer = null;

const statusLine = document.getElementById("events-status");
const list = document.getElementById("events");

function showWho() {
  const session = currentSession();
  const signedIn = Boolean(session && session.user);
  const signInLink = document.getElementById("sign-in-link");
  signInLink.hidden = signedIn;
  const login = shop ? `/t/${shop}/login` : "/login";
  signInLink.href = `${login}?next=${encodeURIComponent(location.pathname + location.search)}`;
  document.getElementById("signed-in").hidden = !signedIn;
  if (signedIn) document.getElementById("user-email").textContent = session.user.email;
}

document.getElementById("sign-out").addEventListener("click", async () => {
  await signOut();
  showWho();
});

function renderShows(container, availability) {
  container.replaceChildren();
  for (const show of availability.shows) {
    const section = document.getElementById("show-template").content.firstElementChild.cloneNode(true);
    section.dataset.showId = show.show_id;
    section.querySelector(".show-date").textContent = when(show.show_date);
    const rows = section.querySelector("tbody");
    for (const zone of show.zones) {
      const row = document.createElement("tr");
      row.dataset.zoneId = zone.id;
      for (const [cls, text] of [
        ["zone-name", zone.name],
        ["zone-price", `${zone.price} ${zone.currency || ""}`.trim()],
        ["zone-available", `${zone.available_seats} / ${zone.total_seats}`],
      ]) {
        const cell = document.createElement("td");
        cell.className = cls;
        cell.textContent = text;
        row.append(cell);
      }
      if (zone.available_seats === 0) row.classList.add("sold-out");
      rows.append(row);
    }
    container.append(section);
  }
}

async function loadAvailability(item) {
  try {
    const { data } = await api(`/api/v1/events/${encodeURIComponent(item.dataset.eventId)}/availability`);
    renderShows(item.querySelector(".shows"), data);
  } catch (failure) {
    item.querySelector(".shows").textContent = `Seats unavailable right now (${failure.message}).`;
  }
}

function renderEvent(event) {
  const item = document.getElementById("event-template").content.firstElementChild.cloneNode(true);
  item.dataset.eventId = event.id;
  item.querySelector(".event-title").textContent = event.title;
  const facts = [event.venue, event.category, event.next_show && `next show ${when(event.next_show)}`];
  if (event.min_age) facts.push(`${event.min_age}+`);
  facts.push(`up to ${event.max_tickets_per_user} tickets per person`);
  item.querySelector(".event-meta").textContent = facts.filter(Boolean).join(" · ");
  item.querySelector(".event-description").textContent = event.description || "";
  const room = item.querySelector(".waiting-room");
  room.href = `/waiting-room/${encodeURIComponent(event.id)}`;
  if (event.status !== "published") room.remove();
  return item;
}

async function loadEvents() {
  clearInterval(refreshTimer);
  statusLine.textContent = "Loading events…";
  const query = new URLSearchParams({ page: String(page), per_page: String(PER_PAGE) });
  if (category) query.set("category", category);
  if (shop) query.set("tenant", shop); // one storefront's events
  let answer;
  try {
    answer = await api(`/api/v1/events?${query}`);
  } catch (failure) {
    statusLine.textContent = `Could not load events: ${failure.message}`;
    return;
  }
  const items = answer.data.map(renderEvent);
  list.replaceChildren(...items);
  const { total } = answer.meta;
  const pages = Math.max(1, Math.ceil(total / PER_PAGE));
  statusLine.textContent = total === 0 ? "No events on sale right now." : `${total} event(s)`;
  document.getElementById("page-label").textContent = `Page ${page} of ${pages}`;
  document.getElementById("previous-page").disabled = page <= 1;
  document.getElementById("next-page").disabled = page >= pages;
  await Promise.all(items.map(loadAvailability));
  refreshTimer = setInterval(() => {
    if (document.visibilityState === "visible") items.forEach(loadAvailability);
  }, REFRESH_MS);
}

function go(newPage) {
  page = newPage;
  const query = new URLSearchParams({ page: String(page) });
  if (category) query.set("category", category);
  history.replaceState(null, "", `?${query}`);
  loadEvents();
}

async function loadCategories() {
  const select = document.getElementById("category");
  try {
    const { data } = await api(shop ? `/api/v1/categories?tenant=${shop}` : "/api/v1/categories");
    for (const c of data) select.append(new Option(c.name, c.slug, false, c.slug === category));
  } catch {
    select.disabled = true; // the list still works unfiltered
  }
  select.addEventListener("change", () => {
    category = select.value;
    go(1);
  });
}

document.getElementById("previous-page").addEventListener("click", () => go(page - 1));
document.getElementById("next-page").addEventListener("click", () => go(page + 1));

showWho();
loadCategories();
loadEvents();
