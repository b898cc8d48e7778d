"""media_type: the CSS media a page is rendered with, proven by real Chromium's pixels and pages."""

from __future__ import annotations

import re
from typing import Any

from tests.conftest import Service, image_of

SCREEN_RGB, PRINT_RGB = (0, 160, 0), (200, 0, 0)
# The body is green on screen and red in print.
PAINTED = ("<style>html, body { margin: 0; height: 100%; background: rgb(0, 160, 0) }"
           "@media print { html, body { background: rgb(200, 0, 0) } }</style><p>media</p>")
# In print only, a block several pages tall: the page count says which media the PDF used.
TALL_IN_PRINT = ("<style>.tall { display: none } @media print { .tall { display: block; height: 5000px } }</style>"
                 "<p>media</p><div class=tall></div>")


async def capture(service: Service, **options: Any) -> Any:
    return await service.client.post("/v1/screenshot", json=options, headers=service.auth())


async def colour(service: Service, **options: Any) -> tuple[int, int, int]:
    response = await capture(service, html=PAINTED, response_type="image", width=300, height=200, **options)
    assert response.status == 200, await response.text()
    return tuple(image_of(await response.read()).convert("RGB").getpixel((150, 150)))


def pdf_pages(data: bytes) -> int:
    assert data.startswith(b"%PDF-")
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", data))


async def test_an_image_uses_screen_media_unless_asked_for_print(service: Service) -> None:
    assert await colour(service) == SCREEN_RGB
    assert await colour(service, media_type="print") == PRINT_RGB
    assert await colour(service, media_type="screen") == SCREEN_RGB
    jpeg = await colour(service, format="jpeg", media_type="print")
    assert all(abs(a - b) <= 12 for a, b in zip(jpeg, PRINT_RGB, strict=True)), jpeg  # lossy, but print's red


async def test_a_pdf_is_printed_with_print_media_unless_asked_for_screen(service: Service) -> None:
    pages = {}
    for media in (None, "print", "screen"):
        chosen = {} if media is None else {"media_type": media}
        response = await capture(service, html=TALL_IN_PRINT, format="pdf", response_type="image", **chosen)
        assert response.status == 200 and response.content_type == "application/pdf", await response.text()
        pages[media] = pdf_pages(await response.read())
    assert pages["screen"] == 1
    assert pages[None] == pages["print"] > 1


async def test_media_type_is_part_of_the_cache_fingerprint(service: Service) -> None:
    async def cached(**options: Any) -> Any:
        response = await capture(service, html=PAINTED, cache=True, response_type="base64", **options)
        assert response.status == 200, await response.text()
        return response.headers["X-Cache"]

    assert await cached() == "MISS"
    assert await cached(media_type="print") == "MISS"  # another image, not the screen capture
    assert await cached(media_type="print") == "HIT"
    assert await cached(media_type="screen") == "HIT"  # what a png is rendered with anyway


async def test_an_unknown_media_type_is_a_400_naming_it_and_the_service_goes_on(service: Service) -> None:
    for response in (await capture(service, html=PAINTED, media_type="tv"),
                     await service.shot("/paint", media_type="3d")):
        assert response.status == 400
        error = (await response.json())["error"]
        assert error["code"] == "invalid_parameter"
        assert error["details"]["fields"] == {"media_type": "must be one of screen, print"}
    assert await colour(service, media_type="print") == PRINT_RGB
