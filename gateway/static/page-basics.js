// What many pages need: a date as the reader's local text, and the id a page's path names
// (/book/<event>, /waiting-room/<event>, /pay/<booking>, /tickets/<booking>).

export function when(iso) {
  return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "";
}

export function idFromPath() {
  return decodeURIComponent(location.pathname.split("/")[2] || "");
}

// The storefront a page is of: /t/<slug>/... (a tenant's own events, sign-in and registration);
// null on the pages of every storefront.
export function storefront() {
  const match = location.pathname.match(/^\/t\/([a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)\//);
  return match ? match[1] : null;
}
