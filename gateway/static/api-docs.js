// The API's reference and try-it-out page: Swagger UI (served from the Python package
// openapi-ui-bundles, no CDN) reading the gateway's own OpenAPI document.
import { currentSession } from "./session.js";

const ui = window.SwaggerUIBundle({
  url: "/api/v1/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [window.SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  // Calls made with "Try it out" carry the signed-in user's token, if there is one.
  requestInterceptor: (request) => {
    const token = currentSession()?.access_token;
    if (token && !request.headers.Authorization) request.headers.Authorization = `Bearer ${token}`;
    return request;
  },
});
window.apiDocs = ui; // for a person at the console, and the browser test
