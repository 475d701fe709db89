// Commands that go through the workers (reserve, pay, cancel, refund) may answer 202 when the worker's
// answer is late: {request_id, status: "pending", poll}. The final answer is then asked for until
// it comes; it is what the command would have answered (a payment, a booking), and an error
// answer is thrown as the ApiError it is.
import { api } from "/static/session.js";

const POLL_MS = 1000;
const POLL_LIMIT_MS = 60000;

export const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A payment or a booking never carries request_id: only the pending answer does.
export function isLate(data) {
  return Boolean(data && data.request_id && data.status === "pending");
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
