// A registered buyer opens the link mailed to them: the token comes after '#' (never sent to a
// server by the browser); using it verifies the address and signs them in with a fresh session.
import { verifyEmail } from "/static/session.js";

const state = document.getElementById("verify-state");
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
history.replaceState(null, "", location.pathname); // the token leaves the address bar (and history)

async function confirm() {
  if (!token) {
    state.textContent = "This page needs the link from your confirmation mail.";
    return;
  }
  try {
    const user = await verifyEmail(token);
    state.textContent = `Thank you: ${user.email} is confirmed. You can queue and book now.`;
    document.body.dataset.verified = "yes";
    document.getElementById("to-events").hidden = false;
  } catch (failure) {
    state.textContent =
      failure.status === 404
        ? "This link has been used or has expired. Sign in and ask for a new one."
        : `Could not confirm your address (${failure.message}).`;
  }
}

confirm();
