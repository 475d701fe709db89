// The queue pass a waiting room hands out on admission, kept for this tab (sessionStorage) per
// event until the booking page sends it as X-Queue-Pass.

const key = (eventId) => `booking-rush.queue-pass.${eventId}`;

export function keepPass(eventId, token, expiresAt) {
  sessionStorage.setItem(key(eventId), JSON.stringify({ pass: token, expires_at: expiresAt }));
}

export function forgetPass(eventId) {
  sessionStorage.removeItem(key(eventId));
}

// The stored pass, or null when there is none or it has run out (the server would refuse it).
export function storedPass(eventId) {
  let kept = null;
  try {
    kept = JSON.parse(sessionStorage.getItem(key(eventId)));
  } catch {
    kept = null;
  }
  if (!kept || !kept.pass || !(Date.parse(kept.expires_at) > Date.now())) {
    forgetPass(eventId);
    return null;
  }
  return kept;
}
