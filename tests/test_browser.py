"""The app in a real browser: Debian's Chromium driven by Playwright (never `playwright install`)."""
from __future__ import annotations

from pathlib import Path

import pytest
from app_server import full_checkpoints, serve

from moodgen.mood import PRESETS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 240_000  # a busy CI machine can take minutes for a generation; nothing here measures time

PAD_IS_HIT = """() => { const r = document.querySelector('#mood-pad svg.pad').getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return hit !== null && hit.closest('svg.pad') !== null; }"""

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(),
                                reason=f"{CHROMIUM} not found (apt-get install chromium chromium-driver)")


def pad_point(box: dict, valence: float, arousal: float) -> tuple[float, float]:
    """Page coordinates of a mood on the pad's SVG (viewBox -12..212: the pad spans 0..200, v = x/100 - 1)."""
    return (box["x"] + (valence + 1) * 100 / 224 * box["width"] + 12 / 224 * box["width"],
            box["y"] + (1 - arousal) * 100 / 224 * box["height"] + 12 / 224 * box["height"])


def slider_value(page, elem_id: str) -> float:
    return float(page.locator(f"#{elem_id} input[type=number]").input_value())


def wait_for_slider(page, elem_id: str, value: float) -> None:
    page.wait_for_function("([id, v]) => Math.abs(Number(document.querySelector(`#${id} input[type=number]`).value)"
                           " - v) < 1e-6", arg=[elem_id, value], timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def url(tiny_checkpoints, tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    with serve(full_checkpoints(tiny_checkpoints, folder / "checkpoints"), folder / "downloads") as u:
        yield u


@pytest.fixture()
def page(url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        page.locator("#mood-pad [data-ready=true] svg.pad").wait_for()
        # Gradio's translucent loading overlay covers the page for a moment after load: wait until the pad
        # itself is what a click would hit.
        page.wait_for_function(PAD_IS_HIT)
        yield page
        browser.close()


def test_preset_then_pad_click_generates_and_shows_both_mels(page, tmp_path):
    page.locator("#preset-sad").click()
    wait_for_slider(page, "valence", PRESETS["sad"][0])
    wait_for_slider(page, "arousal", PRESETS["sad"][1])

    box = page.locator("#mood-pad svg.pad").bounding_box()
    page.mouse.click(*pad_point(box, 0.5, 0.25))
    wait_for_slider(page, "valence", 0.5)
    wait_for_slider(page, "arousal", 0.25)
    assert page.locator("#mood-pad .readout").inner_text() == "valence 0.50 · arousal 0.25"

    page.wait_for_function("document.querySelector('#summary').innerText.includes('V +0.50 / A +0.25')")
    for elem_id in ("gen-mel", "real-mel"):  # both spectrograms decoded, at the same size (same axes)
        page.wait_for_function("id => { const i = document.querySelector(`#${id} img`);"
                               " return i !== null && i.complete && i.naturalWidth > 0; }", arg=elem_id)
    gen, real = (page.locator(f"#{e} img").evaluate("i => [i.naturalWidth, i.naturalHeight]")
                 for e in ("gen-mel", "real-mel"))
    assert gen == real
    page.locator("#gen-audio audio").first.wait_for(state="attached")
    # the generation's target and the judge's estimate are drawn on the pad
    page.locator("#mood-pad circle.aimed").wait_for()
    page.locator("#mood-pad rect.heard").wait_for()
    assert slider_value(page, "valence") == 0.5 and slider_value(page, "arousal") == 0.25
    page.screenshot(path=tmp_path / "app.png", full_page=True)
    assert (tmp_path / "app.png").stat().st_size > 10_000


def test_drag_moves_the_point_and_sliders_move_the_pad(page):
    box = page.locator("#mood-pad svg.pad").bounding_box()
    page.mouse.move(*pad_point(box, -0.8, 0.8))
    page.mouse.down()
    page.mouse.move(*pad_point(box, -0.3, 0.6), steps=5)
    page.mouse.move(*pad_point(box, -0.6, -0.4), steps=5)
    page.mouse.up()
    wait_for_slider(page, "valence", -0.6)
    wait_for_slider(page, "arousal", -0.4)

    number = page.locator("#valence input[type=number]")
    number.fill("0.9")
    number.press("Enter")
    page.wait_for_function("document.querySelector('#mood-pad .readout').innerText.startsWith('valence 0.90')")
    cx = float(page.locator("#mood-pad circle.point").get_attribute("cx"))
    assert cx == pytest.approx((0.9 + 1) * 100)
