// A storefront's registration page (/t/<slug>/register): an account with that tenant, then a
// mailed link to confirm the address (/verify-email) before queueing or booking.
import { storefront } from "/static/page-basics.js";
import { register } from "/static/session.js";

const shop = storefront();
const form = document.getElementById("register-form");
const problem = document.getElementById("register-error");
document.getElementById("shop").textContent = shop;
for (const [id, path] of [
  ["events-link", "events"],
  ["home", "events"],
  ["login-link", "login"],
]) {
  document.getElementById(id).href = `/t/${shop}/${path}`;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  problem.hidden = true;
  const button = document.getElementById("register");
  button.disabled = true;
  const email = document.getElementById("email").value.trim();
  try {
    const made = await register(
      shop,
      email,
      document.getElementById("password").value,
      document.getElementById("full-name").value,
    );
    form.hidden = true;
    const done = document.getElementById("registered");
    done.textContent = made.verification_sent
      ? `Welcome! We mailed a link to ${email}: open it to confirm your address, then sign in.`
      : "Welcome! Your account is made, but the confirmation mail could not be sent: sign in and ask for it again.";
    done.hidden = false;
  } catch (failure) {
    problem.textContent =
      failure.code === "EMAIL_ALREADY_REGISTERED"
        ? "An account with this e-mail exists here: sign in instead."
        : failure.details
          ? Object.entries(failure.details)
              .map(([field, why]) => `${field}: ${why}`)
              .join("; ")
          : failure.message;
    problem.hidden = false;
    button.disabled = false;
  }
});
