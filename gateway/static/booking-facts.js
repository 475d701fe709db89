// What a booking names only by id (its event, show and zone), looked up for the pages that show
// bookings: the event's title, and from its availability the show dates and zone names. One
// lookup per event and page, however many of its bookings the page lists.
import { when } from "/static/page-basics.js";
import { api } from "/static/session.js";

const looked = new Map(); // event id -> promise of its facts

async function lookUp(eventId) {
  const id = encodeURIComponent(eventId);
  // Either may fail (an event taken off sale, a busy moment): the page then shows less, not nothing.
  const [event, seats] = await Promise.allSettled([
    api(`/api/v1/events/${id}`),
    api(`/api/v1/events/${id}/availability`),
  ]);
  const facts = { title: null, shows: new Map(), zones: new Map() };
  if (event.status === "fulfilled") facts.title = event.value.data.title;
  if (seats.status === "fulfilled") {
    for (const show of seats.value.data.shows) {
      facts.shows.set(show.show_id, show.show_date);
      for (const zone of show.zones) facts.zones.set(zone.id, zone.name);
    }
  }
  return facts;
}

// {title, show, zone} of a booking, as text (the ids' place taken by "" or "–" when unknown).
export async function describe(booking) {
  if (!looked.has(booking.event_id)) looked.set(booking.event_id, lookUp(booking.event_id));
  const facts = await looked.get(booking.event_id);
  return {
    title: facts.title || "An event",
    show: when(facts.shows.get(booking.show_id)) || "–",
    zone: facts.zones.get(booking.zone_id) || "–",
  };
}
