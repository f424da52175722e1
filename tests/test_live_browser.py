"""Live mode in a real browser (Debian's Chromium via Playwright): the button, the live marker and its trail, a drag
that steers the stream without making a clip, the recording kept on Stop; at desktop and phone sizes."""
from __future__ import annotations

import pytest
from app_server import full_checkpoints, serve
from test_browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE, in_viewport, open_page, pad_point

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(),
                                reason=f"{CHROMIUM} not found (apt-get install chromium chromium-driver)")

MARKER = "#mood-pad svg.pad circle.live-marker"
# the marker's place on the pad, as a mood
MARKER_MOOD = f"""() => {{ const c = document.querySelector('{MARKER}');
  return c ? [Number(c.getAttribute('cx')) / 100 - 1, 1 - Number(c.getAttribute('cy')) / 100] : null; }}"""

# any request for a clip turns the Generate button to "Generating…" at once (client-side): note if it ever does
WATCH_GENERATE = """() => { window.__generating = false; const b = document.querySelector('#generate');
  new MutationObserver(() => { if (b.innerText.includes('Generating')) window.__generating = true; })
    .observe(b, {subtree: true, childList: true, characterData: true}); }"""


@pytest.fixture(scope="module")
def url(tiny_checkpoints, tmp_path_factory):
    folder = tmp_path_factory.mktemp("live-browser")
    with serve(full_checkpoints(tiny_checkpoints, folder / "checkpoints"), folder / "outputs",
               make_examples=True) as u:
        yield u


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def marker_near(page, valence: float, arousal: float) -> None:
    page.wait_for_function(f"""([v, a]) => {{ const m = ({MARKER_MOOD})();
      return m !== null && Math.abs(m[0] - v) < 0.05 && Math.abs(m[1] - a) < 0.05; }}""", arg=[valence, arousal])


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_live_view_follows_a_drag_without_a_clip_and_keeps_the_recording(browser, url, viewport):
    page = open_page(browser, url, viewport)
    live = page.locator("#live-play")
    assert live.inner_text() == "Play live" and in_viewport(page, "#live-play")  # beside or under the pad
    page.evaluate(WATCH_GENERATE)
    page.mouse.click(*pad_point(page, 0.7, 0.7))  # the watch sees a clip asked for (out of live mode, a click does)
    page.wait_for_function("window.__generating")
    page.wait_for_function("document.querySelector('#generate').innerText.trim() === 'Generate'")
    summary = page.locator("#summary").inner_text()
    live.click()
    page.wait_for_function("document.querySelector('#live-play').innerText.trim() === 'Stop'")
    marker_near(page, 0.7, 0.7)  # the first screen's mood is playing
    page.evaluate("window.__generating = false")
    page.locator("#mood-pad svg.pad").scroll_into_view_if_needed()  # a phone scrolled to the control's result
    page.mouse.move(*pad_point(page, 0.6, 0.6))
    page.mouse.down()
    page.mouse.move(*pad_point(page, -0.6, -0.5), steps=8)
    page.mouse.up()
    marker_near(page, -0.6, -0.5)  # the music followed the drag...
    assert page.locator("#mood-pad svg.pad polyline.trail").get_attribute("points").count(",") >= 2  # ...its trail
    page.wait_for_timeout(1000)  # a clip the release asked for would have started by now
    assert page.locator("#summary").inner_text() == summary  # no clip was made for the release:
    assert page.evaluate("window.__generating") is False  # the Generate button never even read "Generating…"
    assert page.locator("#live-status").inner_text().startswith("Live 0:")
    if viewport is DESKTOP:  # the live bar beside the pad, level with its top
        bar, pad = page.locator("#live").bounding_box(), page.locator("#mood-pad").bounding_box()
        assert bar["x"] > pad["x"] + pad["width"] and bar["y"] < pad["y"] + pad["height"] / 2
    live.click()  # Stop: the recording becomes the result
    page.wait_for_function("document.querySelector('#summary').innerText.includes('Played live')")
    assert live.inner_text() == "Play live" and page.locator(MARKER).count() == 0
    assert page.locator("#downloads a[download$='.mid']").count() == 1
    page.close()
