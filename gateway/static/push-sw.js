// The waiting room's service worker: shows the gateway's turn notices (Web Push, encrypted for
// this browser; the browser decrypts) and opens the room page when one is clicked. A notice
// links to the room page only: the pass is taken there, never carried in a URL.
self.addEventListener("push", (event) => {
  let notice;
  try {
    notice = event.data.json();
  } catch {
    return;
  }
  const url = typeof notice.url === "string" && notice.url.startsWith("/") ? notice.url : "/events";
  event.waitUntil(
    self.registration.showNotification(notice.title, {
      body: notice.body,
      tag: notice.tag, // a later notice of the same room replaces the earlier
      renotify: true,
      requireInteraction: notice.kind === "called",
      data: { url },
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = new URL(event.notification.data.url, self.location.origin).href;
  event.waitUntil(
    (async () => {
      for (const client of await self.clients.matchAll({ type: "window", includeUncontrolled: true })) {
        if (client.url === url) return client.focus();
      }
      return self.clients.openWindow(url);
    })(),
  );
});
