"""Every page of the web app on a phone (390x844), and the details a new user tripped over.

A real `camsight run` with a live camera (PETS09 played as one, from a folder with
a long name) and a real Chromium. On a phone-sized screen every page, the
sign-in and password pages and the zone editor included, and any page the
navigation offers (a Users page too, once it is there), fits without sideways
scrolling, and no table cell with text is squeezed below about four characters (ten for a
long value).
On a desktop the Audit page shows each entry's detail as "key: value" text, not
JSON; the camera card says "1 zone" and "1 rule", cuts its long source path with
an ellipsis (the whole path on hover) and shows "connected" in green. The first
sign-in does not ask again for the one-time password just typed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import browser
from tests.integration.test_web_browser import (
    DESKTOP,
    PHONE,
    no_sideways_scroll,
    shot,
    sign_in_first_time,
    start_run,
    stop_run,
    watch_for_problems,
)
from tests.servers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: How long a page may take to show on a machine busy analysing the camera (ms).
WAIT = 20_000
#: A folder name long enough to overflow any camera card.
LONG_FOLDER = "footage-from-the-north-entrance-camera-installed-in-2019-by-the-previous-contractor"
#: A search whose text is long: its audit entry's detail must wrap, not widen the page.
LONG_QUERY = "person wearing a red hat carrying a large umbrella near the north entrance after dark"

#: Table cells squeezed: narrower than their text or 4 characters (whichever is less), or, for a
#: long value (over 20 characters), narrower than 10 characters, which reads as a vertical strip
#: of letters. As [cell text, width in px, needed px]; measured in each cell's own font.
SQUEEZED_CELLS = """() => {
  const ctx = document.createElement('canvas').getContext('2d');
  const bad = [];
  for (const cell of document.querySelectorAll('td, th')) {
    const text = cell.textContent.trim();
    if (!text || !cell.getClientRects().length) continue;
    const style = getComputedStyle(cell);
    ctx.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const inner = cell.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const chars = text.length > 20 ? 10 : 4;
    const need = Math.min(ctx.measureText(text).width, ctx.measureText('0'.repeat(chars)).width);
    if (inner + 1 < need) bad.push([text.slice(0, 40), inner, need]);
  }
  return bad;
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, yolox_model: Path, vtest: Path) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("phone")
    folder = work / LONG_FOLDER
    folder.mkdir()
    source = folder / "vtest.avi"
    source.symlink_to(vtest)
    config = work / "site.yaml"
    config.write_text(
        f"detector: {{backend: yolox, model: {yolox_model}}}\n"
        "cameras:\n"
        "  lobby:\n"
        f"    url: {source}\n"
        "    fps: 1\n"
        "    zones: {door: {points: [[0.1, 0.1], [0.5, 0.1], [0.5, 0.6]], units: normalised}}\n"
        "    rules: [{type: zone_intrusion, zone: door}]\n"
    )
    port = free_port()
    proc, _address, password = start_run(
        ["--config", str(config), "--data", str(work / "data"), "--port", str(port)]
    )
    yield {"url": f"http://127.0.0.1:{port}", "password": password, "source": str(source)}
    stop_run(proc)


def rgb(css: str) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"\d+", css)[:3])


def check_phone_page(page, name: str) -> None:
    """The page fits a phone's width and no table cell is squeezed."""
    assert no_sideways_scroll(page), f"{name} scrolls sideways on a phone"
    squeezed = page.evaluate(SQUEEZED_CELLS)
    assert not squeezed, f"{name}: table cells squeezed on a phone: {squeezed}"
    shot(page, f"40-phone-{name}")


def test_every_page_fits_a_phone_and_reads_well(site: dict) -> None:
    from playwright.sync_api import expect

    url = site["url"]
    with browser() as chromium:
        context = chromium.new_context(viewport=PHONE, locale="en-GB")
        page = context.new_page()
        problems = watch_for_problems(page)
        page.set_default_timeout(20_000)

        # Signed out: the sign-in page. Then the first sign-in, where the password page
        # asks only for the new password (the helper checks that).
        page.goto(url)
        expect(page.locator("#sign-in")).to_be_visible(timeout=WAIT)
        check_phone_page(page, "sign-in")
        sign_in_first_time(page, url, site["password"])

        # Entries with details for the Audit page: a search with a long text.
        searched = page.request.get(f"{url}/api/v1/search", params={"q": LONG_QUERY})
        assert searched.ok, searched.text()

        # Every page the navigation offers an admin (whatever pages exist), the password
        # page and the zone editor.
        pages = page.eval_on_selector_all("nav a[data-page]", "links => links.map(a => a.dataset.page)")
        assert {"search", "events", "cameras", "upload", "audit"} <= set(pages), pages
        for name in [*pages, "password", "cameras?edit=lobby"]:
            page.goto(f"{url}/#/{name}")
            expect(page.locator("main h1")).to_be_visible(timeout=WAIT)
            if name == "audit":
                expect(page.locator("td.detail", has_text=LONG_QUERY)).to_be_visible(timeout=WAIT)
            if name == "cameras":
                expect(page.locator(".camera-card[data-camera=lobby] .state")).to_have_text(
                    "connected", timeout=90_000
                )
            page.wait_for_load_state("networkidle")
            check_phone_page(page, name.split("?")[0] if "?" not in name else "camera-editor")

        # The camera card on a phone: the long source path is cut inside the card, whole on hover.
        page.goto(f"{url}/#/cameras")
        card = page.locator(".camera-card[data-camera=lobby]")
        expect(card.locator(".state")).to_have_text("connected", timeout=90_000)
        fit = card.evaluate(
            """card => { const code = [...card.querySelectorAll('code')].find(c => c.title || c.textContent);
                 const a = code.getBoundingClientRect(), b = card.getBoundingClientRect();
                 return { title: code.title, cut: code.scrollWidth > code.clientWidth,
                          inside: a.left >= b.left - 1 && a.right <= b.right + 1,
                          ellipsis: getComputedStyle(code).textOverflow }; }"""
        )
        assert fit == {"title": site["source"], "cut": True, "inside": True, "ellipsis": "ellipsis"}, fit

        # A desktop: the camera card's counts and state, the Audit page's details.
        page.set_viewport_size(DESKTOP)
        page.goto(f"{url}/#/cameras")
        expect(card.locator(".state")).to_have_text("connected", timeout=90_000)
        text = card.inner_text()
        assert "1 zone ·" in text and "1 rule" in text and "0 lines" in text, text
        assert not re.search(r"\b1 (zones|rules)\b", text), text
        red, green, blue = rgb(card.locator(".state").evaluate("b => getComputedStyle(b).backgroundColor"))
        assert green > red + 20 and green > blue + 20, ("connected is not green", red, green, blue)
        shot(page, "41-desktop-cameras")

        page.goto(f"{url}/#/audit")
        detail = page.locator("td.detail", has_text=LONG_QUERY).first
        expect(detail).to_be_visible(timeout=WAIT)
        assert re.search(r"query: " + re.escape(LONG_QUERY), detail.inner_text()), detail.inner_text()
        for cell in page.locator("td.detail").all_inner_texts():
            assert not re.search(r'[{}\[\]]|":', cell), f"raw JSON in the audit detail: {cell!r}"
        assert not page.evaluate(SQUEEZED_CELLS)
        shot(page, "42-desktop-audit")
        assert not problems, problems
        context.close()
