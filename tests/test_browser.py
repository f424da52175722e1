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
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

PAD_IS_HIT = """() => { const r = document.querySelector('#mood-pad svg.pad').getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return hit !== null && hit.closest('svg.pad') !== null; }"""
# a result is shown: the summary names its target, the button is idle again and both spectrograms are decoded
RESULT_SHOWN = """(target) => document.querySelector('#summary').innerText.includes(target)
  && document.querySelector('#generate').innerText.trim() === 'Generate'
  && ['gen-mel', 'real-mel'].every(id => { const i = document.querySelector(`#${id} img`);
                                           return i !== null && i.complete && i.naturalWidth > 0; })"""
# WCAG 2 contrast of each text element against the first opaque background behind it
CONTRAST = """(selector) => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92
                                                   : ((v + 0.055) / 1.055) ** 2.4; })
                                     .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (e) => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
                                 if (c.length === 3 || c[3] === 1) return c.slice(0, 3); } return [255, 255, 255]; };
  const low = [];
  for (const root of document.querySelectorAll(selector)) {
    for (const e of [root, ...root.querySelectorAll('*')]) {
      const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
      const style = getComputedStyle(e);
      if (!own || style.visibility === 'hidden' || e.closest('svg') || e.getClientRects().length === 0) continue;
      const [a, b] = [lum(rgb(style.color)), lum(background(e))];
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && style.fontWeight >= 700);
      if (ratio < (large ? 3 : 4.5)) low.push(`${e.textContent.trim().slice(0, 40)}: ${ratio.toFixed(2)}`);
    }
  }
  return low; }"""

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(),
                                reason=f"{CHROMIUM} not found (apt-get install chromium chromium-driver)")


def pad_point(page, valence: float, arousal: float) -> tuple[float, float]:
    """Page coordinates of a mood on the pad's SVG (the pad spans 0..200 in SVG units: v = x/100 - 1)."""
    box = page.locator("#mood-pad svg.pad").bounding_box()
    vb = page.locator("#mood-pad svg.pad").evaluate("s => [s.viewBox.baseVal.x, s.viewBox.baseVal.width]")
    scale = box["width"] / vb[1]
    return (box["x"] + ((valence + 1) * 100 - vb[0]) * scale, box["y"] + ((1 - arousal) * 100 - vb[0]) * scale)


def slider_value(page, elem_id: str) -> float:
    return float(page.locator(f"#{elem_id} input[type=number]").input_value())


def wait_for_slider(page, elem_id: str, value: float) -> None:
    page.wait_for_function("([id, v]) => Math.abs(Number(document.querySelector(`#${id} input[type=number]`).value)"
                           " - v) < 1e-6", arg=[elem_id, value], timeout=TIMEOUT_MS)


def in_viewport(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    view = page.viewport_size
    return (box is not None and box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= view["width"] + 1
            and box["y"] + box["height"] <= view["height"] + 1)


@pytest.fixture(scope="module")
def url(tiny_checkpoints, tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
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


def open_page(browser, url: str, viewport: dict = DESKTOP):
    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.locator("#mood-pad [data-ready=true] svg.pad").wait_for()
    # Gradio's translucent loading overlay covers the page for a moment after load: wait until the pad
    # itself is what a click would hit, and until the first screen's example is shown
    page.wait_for_function(PAD_IS_HIT)
    page.wait_for_function(RESULT_SHOWN, arg="aimed at V +0.70 / A +0.70")
    return page


@pytest.fixture()
def page(browser, url):
    page = open_page(browser, url)
    yield page
    page.close()


def test_the_first_screen_plays_an_example(page):
    # one example per preset is made at start; the first one is loaded in the player and plays
    assert page.locator("#mood-pad svg.pad circle.aimed").count() == 1
    assert page.locator("#intro").inner_text().count("how pleasant") == 1
    # the player knows the clip's length once it has loaded it; a click before that can be lost
    page.wait_for_function("document.querySelector('#gen-audio time#duration')?.innerText === '0:10'")
    page.locator("#gen-audio button.play-pause-button").click()
    page.wait_for_function("document.querySelector('#gen-audio time#time').innerText !== '0:00'")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_after_a_preset_click_the_result_is_in_view(browser, url, viewport):
    page = open_page(browser, url, viewport)
    try:
        page.locator("#preset-sad").click()
        page.wait_for_function(RESULT_SHOWN, arg="aimed at V -0.70 / A -0.70")
        page.wait_for_timeout(300)  # the phone's scroll into view
        for selector in ("#gen-audio", "#gen-mel img", "#summary"):
            assert in_viewport(page, selector), (selector, page.locator(selector).bounding_box())
        # presets laid out like the pad: angry | happy over sad | relaxed
        boxes = {n: page.locator(f"#preset-{n}").bounding_box() for n in PRESETS}
        assert boxes["angry"]["x"] < boxes["happy"]["x"] and boxes["sad"]["x"] < boxes["relaxed"]["x"]
        assert boxes["angry"]["y"] == boxes["happy"]["y"] < boxes["sad"]["y"] == boxes["relaxed"]["y"]
    finally:
        page.close()


def test_preset_then_pad_click_generates_and_shows_both_mels(page):
    page.evaluate("""() => { window.labels = []; const b = document.querySelector('#generate');
      new MutationObserver(() => window.labels.push(b.innerText.trim())).observe(b, {subtree: true,
        childList: true, characterData: true}); }""")
    page.locator("#preset-sad").click()
    wait_for_slider(page, "valence", PRESETS["sad"][0])
    wait_for_slider(page, "arousal", PRESETS["sad"][1])
    page.wait_for_function(RESULT_SHOWN, arg="aimed at V -0.70 / A -0.70")

    page.mouse.click(*pad_point(page, 0.5, 0.25))
    wait_for_slider(page, "valence", 0.5)
    wait_for_slider(page, "arousal", 0.25)
    assert page.locator("#mood-pad .readout").inner_text() == "valence 0.50 · arousal 0.25"
    page.wait_for_function(RESULT_SHOWN, arg="aimed at V +0.50 / A +0.25")
    assert "Generating…" in page.evaluate("window.labels")
    gen, real = (page.locator(f"#{e} img").evaluate("i => [i.naturalWidth, i.naturalHeight]")
                 for e in ("gen-mel", "real-mel"))
    assert gen == real  # same axes
    # the target, the judge's estimate with its uncertainty, and the nearest real clip are drawn on the pad
    for mark in ("circle.aimed", "rect.heard", "ellipse.spread", "path.real"):
        page.locator(f"#mood-pad svg.pad {mark}").wait_for()
    cx = float(page.locator("#mood-pad svg.pad circle.aimed").get_attribute("cx"))
    assert cx == pytest.approx(150.0)
    # downloads are named like the files, players download the same names, and nothing can be removed
    wav = page.locator("#downloads a[download$='.wav']").get_attribute("download")
    assert wav.startswith("moodgen_notes_v+0.50_a+0.25_10s_seed0")
    assert page.locator("#gen-audio a[download]").get_attribute("download") == wav
    assert page.locator("#downloads .label-clear-button:visible").count() == 0


def test_rapid_clicks_end_on_the_last_one(page):
    for name in ("sad", "angry", "relaxed"):
        page.locator(f"#preset-{name}").click()
    page.wait_for_function(RESULT_SHOWN, arg="aimed at V +0.70 / A -0.70")
    assert (slider_value(page, "valence"), slider_value(page, "arousal")) == PRESETS["relaxed"]


def test_a_path_drawn_on_the_pad_becomes_a_journey_with_a_playhead(page):
    page.locator("#pad-mode label", has_text="journey").click()
    page.mouse.move(*pad_point(page, -0.7, -0.6))
    page.mouse.down()
    for v, a in [(-0.5, -0.2), (-0.2, 0.2), (0.2, 0.5), (0.6, 0.7)]:
        page.mouse.move(*pad_point(page, v, a), steps=6)
    page.mouse.up()
    page.wait_for_function(RESULT_SHOWN, arg="Journey of 10 s from sad")  # the duration slider's 10 s
    assert page.locator("#gen-audio time#duration").inner_text() == "0:10"
    page.locator("#mood-pad svg.pad polyline.curve").wait_for()
    playhead = page.locator("#mood-pad svg.pad circle.playhead")
    playhead.wait_for()  # at the curve's start while the clip waits to be played
    start = playhead.get_attribute("cx")
    assert float(start) == pytest.approx(30.0, abs=3)  # valence -0.7
    page.locator("#gen-audio button.play-pause-button").click()
    page.wait_for_function("""(start) => { const c = document.querySelector('#mood-pad svg.pad circle.playhead');
                                           return c !== null && c.getAttribute('cx') !== start; }""", arg=start)


def test_drag_moves_the_point_and_sliders_move_the_pad(page):
    page.mouse.move(*pad_point(page, -0.8, 0.8))
    page.mouse.down()
    page.mouse.move(*pad_point(page, -0.3, 0.6), steps=5)
    page.mouse.move(*pad_point(page, -0.6, -0.4), steps=5)
    page.mouse.up()
    wait_for_slider(page, "valence", -0.6)
    wait_for_slider(page, "arousal", -0.4)

    number = page.locator("#valence input[type=number]")
    number.fill("0.9")
    number.press("Enter")
    page.wait_for_function("document.querySelector('#mood-pad .readout').innerText.startsWith('valence 0.90')")
    cx = float(page.locator("#mood-pad svg.pad circle.point").get_attribute("cx"))
    assert cx == pytest.approx((0.9 + 1) * 100)


def test_keyboard_reaches_the_pad_and_arrows_move_the_mood(page):
    pad = page.locator("#mood-pad svg.pad")
    for _ in range(30):  # Tab from the top of the page until the pad has focus
        page.keyboard.press("Tab")
        if pad.evaluate("s => document.activeElement === s"):
            break
    else:
        pytest.fail("Tab never reached the pad")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowDown")
    wait_for_slider(page, "valence", 0.65)
    wait_for_slider(page, "arousal", 0.65)
    page.keyboard.press("Shift+ArrowLeft")
    wait_for_slider(page, "valence", 0.4)
    assert pad.get_attribute("aria-valuetext") == "valence 0.40, arousal 0.65: happy"
    assert "valence 0.40, arousal 0.65" in page.locator("#mood-pad [aria-live]").inner_text()
    assert pad.evaluate("s => document.activeElement === s")  # focus stays on the pad as it redraws
    page.keyboard.press("Enter")  # makes a clip for the point
    page.wait_for_function(RESULT_SHOWN, arg="aimed at V +0.40 / A +0.65")


def test_an_error_names_its_field_and_the_previous_result_stays(page):
    before = {e: page.locator(f"#{e}").inner_text() for e in ("summary", "downloads")}
    image = page.locator("#gen-mel img").get_attribute("src")
    seed = page.locator("#seed input")
    seed.fill("-5")
    page.locator("#generate").click()
    page.get_by_text("seed must be between 0 and 2147483647, got -5").first.wait_for()
    page.wait_for_function("document.querySelector('#generate').innerText.trim() === 'Generate'")
    assert {e: page.locator(f"#{e}").inner_text() for e in before} == before
    assert page.locator("#gen-mel img").get_attribute("src") == image


def test_every_control_is_labelled_and_text_meets_aa_contrast(page):
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, button, select, textarea, [tabindex]')]
      .filter(e => e.getClientRects().length && !e.closest('[aria-hidden=true]') && e.type !== 'hidden')
      .filter(e => !(e.getAttribute('aria-label') || e.getAttribute('aria-labelledby') || e.labels?.length
                     || e.innerText?.trim() || e.title || e.closest('label')))
      .map(e => e.outerHTML.slice(0, 120))""")
    assert unlabelled == []
    low = page.evaluate(CONTRAST, "#intro, #controls, #modes, #result, #settings")
    assert low == [], low


def test_the_instrument_menu_is_greyed_out_for_the_engine_without_notes(page):
    enabled = "(want) => { const i = document.querySelector('#instrument input'); return i && i.disabled !== want; }"
    page.wait_for_function(enabled, arg=True)  # notes, the default engine, plays the instrument chosen
    page.locator("#engine label", has_text="mel:").click()
    page.wait_for_function(enabled, arg=False)
    page.locator("#engine label", has_text="notes:").click()
    page.wait_for_function(enabled, arg=True)
