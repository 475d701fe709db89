// A tenant's first admin accepts the invitation mailed to them: the token comes after '#' in the
// link (never sent to a server by the browser), the password is theirs to set; then the dashboard.
import { acceptInvitation } from "/static/session.js";

const form = document.getElementById("invitation-form");
const problem = document.getElementById("invitation-error");
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
history.replaceState(null, "", location.pathname); // the token leaves the address bar (and history)

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  problem.hidden = true;
  const button = document.getElementById("accept");
  button.disabled = true;
  try {
    await acceptInvitation(
      token,
      document.getElementById("password").value,
      document.getElementById("full-name").value,
      document.getElementById("tenant").value.trim(),
    );
    location.assign("/dashboard");
  } catch (failure) {
    problem.textContent =
      failure.status === 404
        ? "This invitation link has been used or has expired: ask for a new one."
        : failure.details && failure.details.password
          ? `Password: ${failure.details.password}.`
          : `Could not accept the invitation (${failure.message}).`;
    problem.hidden = false;
    button.disabled = false;
  }
});

if (!token) {
  problem.textContent = "This page needs the link from your invitation mail.";
  problem.hidden = false;
}
