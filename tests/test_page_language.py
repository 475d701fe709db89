"""The waiting room is served in the language the browser prefers, of Thai and English."""

from __future__ import annotations

import pytest

from gateway.routes.pages import preferred_language


@pytest.mark.parametrize(
    "header, lang",
    [
        ("", "en"),
        ("th-TH,th;q=0.9,en;q=0.8", "th"),
        ("en-US,en;q=0.9,th;q=0.8", "en"),
        ("fr-FR,fr;q=0.9,th;q=0.5", "th"),  # the first we speak
        ("de,fr", "en"),
        ("en;q=0.2, th;q=0.7", "th"),  # by q, not order
        ("th;q=bad, en", "en"),
        ("*", "en"),
    ],
)
def test_the_preferred_language(header, lang):
    assert preferred_language(header) == lang


async def test_the_waiting_room_page_says_its_language(gateway_url, http):
    page = f"{gateway_url}/waiting-room/00000000-0000-4000-8000-000000000001"
    async with http.get(page, headers={"Accept-Language": "th-TH,th;q=0.9"}) as answer:
        html = await answer.text()
        assert answer.headers["Content-Language"] == "th" and "Accept-Language" in answer.headers["Vary"]
    assert '<html lang="th">' in html
    async with http.get(page) as answer:
        assert '<html lang="en">' in await answer.text()
