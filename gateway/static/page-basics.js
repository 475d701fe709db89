// What many pages need: a date as the reader's local text, and the id a page's path names
// (/book/<event>, /waiting-room/<event>, /pay/<booking>, /tickets/<booking>).

export function when(iso) {
  return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "";
}

export function idFromPath() {
  return decodeURIComponent(location.pathname.split("/")[2] || "");
}
