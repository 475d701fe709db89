// The browser side of a Booking Rush session: keeps the tokens that /api/v1/auth/login hands
// out, sends the access token with API calls and rotates the pair through /auth/refresh when the
// access token has expired. Later pages (waiting room, bookings, dashboard) import this module.

const STORAGE_KEY = "booking-rush.session";

export function currentSession() {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY));
  } catch {
    return null;
  }
}

function keep(session) {
  localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

function forget() {
  localStorage.removeItem(STORAGE_KEY);
}

async function call(path, { method = "GET", body, token, headers: extra = {} } = {}) {
  const headers = { Accept: "application/json", ...extra };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
  });
  let payload = null;
  try {
    payload = await response.json();
  } catch {
    payload = { success: false, error: { code: "BAD_RESPONSE", message: response.statusText } };
  }
  return { status: response.status, body: payload, retryAfter: response.headers.get("Retry-After") };
}

export class ApiError extends Error {
  constructor(status, error, retryAfter = null) {
    super((error && error.message) || `request failed (${status})`);
    this.status = status;
    this.code = (error && error.code) || "UNKNOWN";
    this.details = (error && error.details) || null;
    const wait = Number.parseInt(retryAfter, 10);
    this.retryAfter = Number.isNaN(wait) ? null : wait; // seconds to wait before asking again (a 429)
  }
}

function unwrap({ status, body, retryAfter }) {
  if (body && body.success) return body;
  throw new ApiError(status, body && body.error, retryAfter);
}

export async function signIn(tenant, email, password) {
  const body = unwrap(await call("/api/v1/auth/login", { method: "POST", body: { tenant, email, password } }));
  keep({ tenant, ...body.data });
  return body.data.user;
}

// A tenant's invited admin sets a password with the invitation's token: a session of theirs.
export async function acceptInvitation(token, password, fullName, tenant) {
  const body = unwrap(
    await call("/api/v1/auth/invitations/accept", {
      method: "POST",
      body: { token, password, full_name: fullName },
    }),
  );
  keep({ tenant, ...body.data });
  return body.data.user;
}

// A new buyer's account with a storefront: {user, verification_sent} (not signed in yet).
export async function register(tenant, email, password, fullName) {
  const body = unwrap(
    await call("/api/v1/auth/register", {
      method: "POST",
      body: { tenant, email, password, full_name: fullName },
    }),
  );
  return body.data;
}

// A registered buyer's mailed link: their address is verified, and the fresh session says so.
export async function verifyEmail(token) {
  const body = unwrap(await call("/api/v1/auth/verify-email", { method: "POST", body: { token } }));
  keep({ tenant: (currentSession() || {}).tenant || null, ...body.data });
  return body.data.user;
}

// A refresh token works once: a second use revokes the whole family (theft detection). So two
// calls that both meet an expired access token share one refresh, and tabs take turns (Web Locks).
let refreshing = null;

async function refreshOnce(staleAccessToken) {
  const run = async () => {
    const session = currentSession();
    if (!session) return null;
    if (session.access_token !== staleAccessToken) return session; // another tab already rotated
    const answer = await call("/api/v1/auth/refresh", {
      method: "POST",
      body: { refresh_token: session.refresh_token },
    });
    if (!(answer.body && answer.body.success)) {
      forget();
      return null;
    }
    const renewed = { ...session, ...answer.body.data };
    keep(renewed);
    return renewed;
  };
  if (!refreshing) {
    refreshing = (navigator.locks ? navigator.locks.request(STORAGE_KEY, run) : run()).finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

// Calls the API as the signed-in user (or anonymously); resolves to the envelope, throws ApiError.
// `body` may be a function of the session, for bodies that carry the (possibly rotated) tokens;
// `headers` are sent as given (e.g. Idempotency-Key, X-Queue-Pass).
export async function api(path, { body, ...options } = {}) {
  const send = (session) =>
    call(path, {
      ...options,
      body: typeof body === "function" ? body(session) : body,
      token: session && session.access_token,
    });
  let session = currentSession();
  let answer = await send(session);
  if (answer.status === 401 && session) {
    session = await refreshOnce(session.access_token);
    answer = await send(session); // refresh failed: try once more as an anonymous visitor
  }
  return unwrap(answer);
}

// For pages only a signed-in user can use: without a session, sign in first and come back here.
export function requireSignIn() {
  if (currentSession()) return true;
  location.replace(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
  return false;
}

export async function signOut() {
  if (!currentSession()) return;
  try {
    await api("/api/v1/auth/logout", {
      method: "POST",
      body: (session) => ({ refresh_token: session && session.refresh_token }),
    });
  } catch {
    // Signed out in this browser either way; an unrevoked refresh token expires on its own.
  } finally {
    forget();
  }
}

// Where to go after signing in: only a path on this site, never another origin. Judged on the
// URL as the browser itself will read it: it drops tabs and newlines and takes "\\" for "/", so
// "/\t/evil.example" is "//evil.example", another site, however it looked as text.
export function safeNext(raw, fallback = "/events") {
  if (typeof raw !== "string" || !raw.startsWith("/")) return fallback;
  let target;
  try {
    target = new URL(raw, location.origin);
  } catch {
    return fallback;
  }
  if (target.origin !== location.origin) return fallback;
  return target.pathname + target.search + target.hash;
}
