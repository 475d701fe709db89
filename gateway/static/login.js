// The login page: signs in through /api/v1/auth/login, keeps the tokens (session.js) and goes on
// to ?next= (a path on this site) or the events page.
import { storefront } from "/static/page-basics.js";
import { currentSession, safeNext, signIn } from "/static/session.js";

const form = document.getElementById("login-form");
const errorBox = document.getElementById("login-error");
const button = document.getElementById("sign-in");
const params = new URLSearchParams(location.search);

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}

const previous = currentSession();
if (previous && previous.tenant) document.getElementById("tenant").value = previous.tenant;
if (params.get("tenant")) document.getElementById("tenant").value = params.get("tenant");
if (storefront()) document.getElementById("tenant").value = storefront(); // /t/<slug>/login: its own

form.addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  errorBox.hidden = true;
  const tenant = form.tenant.value.trim();
  const email = form.email.value.trim();
  const password = form.password.value;
  if (!tenant || !email || !password) {
    showError("Organisation, email and password are all required.");
    return;
  }
  button.disabled = true;
  try {
    await signIn(tenant, email, password);
    location.assign(safeNext(params.get("next")));
  } catch (failure) {
    if (failure.code === "RATE_LIMITED") {
      showError("Too many attempts. Wait a minute and try again.");
    } else if (failure.status === 401 || failure.status === 404) {
      showError("Wrong organisation, email or password.");
    } else {
      showError(failure.message || "Sign-in failed; try again.");
    }
  } finally {
    button.disabled = false;
  }
});
