// Commands that go through the workers (reserve, pay, cancel, refund) may answer 202 when the worker's
// answer is late: {request_id, status: "pending", poll}. The final answer is then asked for until
// it comes; it is what the command would have answered (a payment, a booking), and an error
// answer is thrown as the ApiError it is.
import { api } from "/static/session.js";

const POLL_MS = 1000;
const POLL_LIMIT_MS = 60000;

export const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A payment or a booking never carries request_id: only the pending answer does.
function isLate(data) {
  return Boolean(data && data.request_id && data.status === "pending");
}

// `send()` again while its failure may pass, `tries` sends at most: a lost connection (fetch threw
// a TypeError; the answer may be lost, so only for requests safe to repeat, like one with an
// Idempotency-Key) or what `transient` accepts (by default a rate limit). Waits the failure's
// Retry-After or `waitS` seconds, after `onWait(failure, seconds)` (a page says why it waits).
export async function retrying(
  send,
  { tries, transient = (failure) => failure.code === "RATE_LIMITED", waitS = 2, onWait = () => {} },
) {
  for (let sent = 1; ; sent += 1) {
    try {
      return await send();
    } catch (failure) {
      const lostConnection = failure instanceof TypeError;
      if (sent >= tries || !(lostConnection || transient(failure))) throw failure;
      const wait = failure.retryAfter || waitS;
      onWait(failure, wait);
      await pause(1000 * wait);
    }
  }
}

// `onWait` runs before each wait (a page says it is still waiting).
export async function finalAnswer(data, onWait = () => {}) {
  if (!isLate(data)) return data;
  const path = data.poll || `/api/v1/bookings/requests/${encodeURIComponent(data.request_id)}`;
  const deadline = Date.now() + POLL_LIMIT_MS;
  while (Date.now() < deadline) {
    onWait();
    await pause(POLL_MS);
    try {
      const { data: answer } = await api(path);
      if (!isLate(answer)) return answer;
    } catch (failure) {
      if (failure.code !== "RATE_LIMITED") throw failure;
      await pause(1000 * (failure.retryAfter || 1));
    }
  }
  throw new Error("no answer yet: look at My bookings in a moment before trying again");
}
