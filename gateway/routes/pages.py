"""The browser pages: static HTML, JavaScript modules and CSS from gateway/static.

No page carries inline script or style, so the CSP header (default-src 'self') holds for them
as it does for the API.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from openapi_ui_bundles.swagger_ui import static_path as swagger_ui_path

from gateway.params import PUBLIC_ID, path_uuid

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"

# Path -> page file. Route names start "page:": not API, so not in the OpenAPI document. Every
# path parameter of a page is an id (a UUID); the page's script reads it from the address.
PAGES = {
    "/login": "login.html",
    "/events": "events.html",
    "/waiting-room/{event_id}": "waiting-room.html",
    "/book/{event_id}": "book.html",
    "/my-bookings": "my-bookings.html",
    "/dashboard": "dashboard.html",
    "/invitation": "invitation.html",  # a new tenant's first admin sets a password
    "/verify-email": "verify-email.html",  # a registered buyer's mailed link
    "/api/docs": "api-docs.html",  # the API's reference (Swagger UI over /api/v1/openapi.json)
}

# Pages said in Thai or English (gateway/static/i18n.js): served with <html lang> picked from the
# request's Accept-Language, which the page's script starts from (the reader's switch wins).
PAGE_LANGUAGES = ("en", "th")
LANGUAGE_PAGES = {"waiting-room.html"}

# One storefront's pages (its events, sign-in, registration): /t/<tenant slug>/...; the page's
# script reads the slug from the address.
TENANT_SLUG = "[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?"
STOREFRONT_PAGES = {
    f"/t/{{tenant:{TENANT_SLUG}}}/events": "events.html",
    f"/t/{{tenant:{TENANT_SLUG}}}/login": "login.html",
    f"/t/{{tenant:{TENANT_SLUG}}}/register": "register.html",
}

# Pages of one booking: the route's own pattern checks its id (params.PUBLIC_ID).
BOOKING_PAGES = {
    f"/pay/{{booking_id:{PUBLIC_ID}}}": "pay.html",
    f"/tickets/{{booking_id:{PUBLIC_ID}}}": "ticket.html",
}


def preferred_language(accept_language: str) -> str:
    """The first of PAGE_LANGUAGES an Accept-Language header prefers (by q, then order), else en."""
    best, best_q = "en", 0.0
    for part in accept_language.split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower()[:2]
        if primary in PAGE_LANGUAGES and q > best_q:
            best, best_q = primary, q
    return best


def _page(filename: str, uuid_params: bool = True):
    path = STATIC_DIR / filename
    in_languages = filename in LANGUAGE_PAGES
    # Read once, in each language: a page changes with a deploy.
    said_in = {}
    if in_languages:
        html = path.read_text()
        said_in = {
            lang: html.replace('<html lang="en">', f'<html lang="{lang}">', 1) for lang in PAGE_LANGUAGES
        }

    async def serve(request: web.Request) -> web.StreamResponse:
        for name in request.match_info if uuid_params else ():
            path_uuid(request, name)  # not a UUID names nothing: 404, in the API's envelope
        # Pages change with a deploy; make the browser ask again rather than keep a stale one.
        if not in_languages:
            return web.FileResponse(path, headers={"Cache-Control": "no-cache"})
        lang = preferred_language(request.headers.get("Accept-Language", ""))
        headers = {"Cache-Control": "no-cache", "Content-Language": lang, "Vary": "Accept-Language"}
        return web.Response(text=said_in[lang], content_type="text/html", headers=headers)

    return serve


async def home(request: web.Request) -> web.Response:
    raise web.HTTPFound("/events")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", home, name="page:home")
    for route, filename in PAGES.items():
        app.router.add_get(route, _page(filename), name=f"page:{filename}")
    for route, filename in BOOKING_PAGES.items():
        app.router.add_get(route, _page(filename, uuid_params=False), name=f"page:{filename}")
    for route, filename in STOREFRONT_PAGES.items():
        app.router.add_get(route, _page(filename, uuid_params=False), name=f"page:storefront:{filename}")
    app.router.add_static("/static/", STATIC_DIR, name="page:static", append_version=False)
    # Swagger UI's own files, from the openapi-ui-bundles package (no CDN).
    app.router.add_static(
        "/api/docs/assets/", Path(str(swagger_ui_path)), name="page:api-docs-assets", append_version=False
    )
