"""The app in a real browser: Debian's Chromium driven by Playwright (never `playwright install`)."""
from __future__ import annotations

import io
import zipfile

import pytest
from app_server import full_checkpoints, serve
from browser_page import (
    AXE,
    AXE_SERIOUS,
    CHROMIUM,
    CHROMIUM_ARGS,
    CONTRAST,
    DESKTOP,
    ICON_CONTRAST,
    PHONE,
    RESULT_SHOWN,
    in_viewport,
    open_page,
    pad_point,
    slider_value,
    wait_for_slider,
    watch_requests,
)

from moodgen.config import Limits
from moodgen.mood import PRESETS, validate_mood

pytestmark = pytest.mark.skipif(not CHROMIUM.is_file(),
                                reason=f"{CHROMIUM} not found (apt-get install chromium chromium-driver)")


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


def refusal(check, *args, **kwargs) -> str:
    """The library's message for a value it refuses."""
    with pytest.raises(ValueError) as refused:
        check(*args, **kwargs)
    return str(refused.value)


def field_message(page, field: str, text: str) -> None:
    page.wait_for_function("([f, t]) => document.querySelector(`#${f}-message`)?.innerText === t", arg=[field, text])


def test_a_partial_mood_is_held_back_and_never_breaks_the_pad(page):
    seen = watch_requests(page)
    number = page.locator("#valence input[type=number]")
    number.fill("")
    field_message(page, "valence", refusal(validate_mood, "", 0.0))
    number.press_sequentially("-0.4")  # "-" and "-0." are partial: held back until the box holds a number
    page.wait_for_function("document.querySelector('#mood-pad .readout').innerText.startsWith('valence -0.40')")
    field_message(page, "valence", "")
    assert page.locator("#mood-pad svg.pad").count() == 1 and "Error" not in page.locator("#mood-pad").inner_text()
    assert [s for s in seen if s[0] in "45"] == []  # no request failed
    assert number.get_attribute("aria-invalid") == "false"


def test_number_boxes_refuse_like_the_library_without_clamping_or_a_request(page):
    limits = Limits()
    page.get_by_text("Advanced", exact=True).click()
    for field, text, message in [
        ("duration", "-3", refusal(limits.seconds, -3, field="duration")),
        ("duration", "99999", refusal(limits.seconds, 99999, field="duration")),
        ("seed", "1e30", refusal(limits.seed, 1e30)),
        ("seed", "2.5", refusal(limits.seed, 2.5)),
        ("guidance", "-1", refusal(limits.guidance, -1)),
        ("guidance", "1000", refusal(limits.guidance, 1000)),
        ("steps", "0", refusal(limits.steps, 0)),
    ]:
        box = page.locator(f"#{field} input[type=number]")
        valid = box.input_value()
        box.fill(text)
        field_message(page, field, message)
        box.press("Tab")  # leaving the box keeps what was typed: nothing is clamped
        assert box.input_value() == text and box.get_attribute("aria-invalid") == "true"
        seen = watch_requests(page)
        page.locator("#generate").click()
        page.locator("#preset-sad").click()
        page.wait_for_timeout(500)
        assert not [s for s in seen if "queue/join" in s], (field, text, seen)
        box.fill(valid)
        field_message(page, field, "")


def test_the_play_control_looks_enabled(page):
    assert page.evaluate(ICON_CONTRAST, "#gen-audio button.play-pause-button") >= 3.0


def test_after_any_action_the_result_is_scrolled_into_view(page):
    page.locator("#seed input").fill("5")
    page.locator("#generate").evaluate("b => b.scrollIntoView({block: 'start'})")  # the result is above the view
    assert not in_viewport(page, "#summary")
    page.locator("#generate").click()
    page.wait_for_function(RESULT_SHOWN, arg="seed 5")
    for selector in ("#summary", "#gen-audio"):
        page.wait_for_function(f"() => document.querySelector('{selector}').getBoundingClientRect().top >= 0")
        assert in_viewport(page, selector), selector
    page.get_by_text("Advanced", exact=True).click()
    waypoints = page.locator("#journey textarea")
    waypoints.fill("0:-0.6,-0.6 10:0.7,0.7")
    waypoints.press("Enter")
    page.wait_for_function(RESULT_SHOWN, arg="Journey of 10 s")
    page.wait_for_function("() => document.querySelector('#summary').getBoundingClientRect().top >= 0")
    assert in_viewport(page, "#summary") and in_viewport(page, "#gen-audio")


def test_journey_mode_speaks_plain_words_and_counts_waypoints_from_one(page):
    page.locator("#pad-mode label", has_text="journey").click()
    hint = page.locator("#mood-pad .hint")
    assert "drag a path across the pad" in hint.inner_text().lower()
    seen = watch_requests(page)
    page.mouse.click(*pad_point(page, 0.2, 0.2))  # a tap draws no path
    page.wait_for_function("document.querySelector('#mood-pad .hint').innerText.startsWith('A tap makes no')")
    assert not [s for s in seen if "queue/join" in s]
    page.get_by_text("Advanced", exact=True).click()
    page.locator("#journey textarea").fill("0:0,0 20:2,0")
    page.locator("#journey textarea").press("Enter")
    page.get_by_text("waypoint 2: valence must be in [-1, 1], got 2.0").first.wait_for()


def test_the_instrument_is_in_the_summary_and_the_file_names(page):
    page.locator("#instrument input").click()
    page.locator("ul[role=listbox] li", has_text="harp").click()
    page.locator("#generate").click()
    page.wait_for_function(RESULT_SHOWN, arg="playing harp")
    assert page.locator("#downloads a[download$='.wav']").get_attribute("download").endswith("_harp.wav")


def test_the_soundfont_choice_is_no_menu_over_other_controls(page):
    kind = page.evaluate("window.gradio_config.components.find(c => c.props.elem_id === 'soundfont').type")
    assert kind == "radio"  # every file in view; a menu opened over the Instrument menu
    assert page.locator("#soundfont [role=listbox], #soundfont [role=combobox]").count() == 0


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_axe_finds_no_serious_violation(browser, url, viewport):
    page = open_page(browser, url, viewport)
    try:
        page.add_script_tag(path=str(AXE))
        found = {"first screen": page.evaluate(AXE_SERIOUS)}
        for name in ("Parameters (JSON)", "How far to trust the judge", "Advanced"):
            page.get_by_text(name, exact=True).click()
        page.locator("#pad-mode label", has_text="journey").click()
        page.locator("#duration input[type=number]").fill("-3")
        field_message(page, "duration", refusal(Limits().seconds, -3, field="duration"))
        found["accordions open, journey mode, a refused duration"] = page.evaluate(AXE_SERIOUS)
        assert found == {state: [] for state in found}
    finally:
        page.close()


def test_stems_download_as_one_zip_and_grey_out_for_the_engine_without_notes(page):
    page.locator("#stems input").check()
    page.locator("#preset-sad").click()
    page.wait_for_function(RESULT_SHOWN, arg="aimed at V -0.70 / A -0.70")
    link = page.locator("#downloads a[download$='_stems.zip']")
    href = page.evaluate("h => new URL(h, location.href).href", link.get_attribute("href"))
    names = zipfile.ZipFile(io.BytesIO(page.request.get(href).body())).namelist()
    assert sorted(n.rsplit(".", 2)[1] for n in names if n.endswith(".wav")) == ["bass", "harmony", "melody"]
    assert sum(n.endswith(".mid") for n in names) == 1
    assert page.locator("#downloads a[download$='.melody.wav']").count() == 0  # the parts come in the zip only
    enabled = "(want) => { const i = document.querySelector('#stems input'); return i && i.disabled !== want; }"
    page.locator("#engine label", has_text="mel:").click()
    page.wait_for_function(enabled, arg=False)
    assert "plays no notes" in page.locator("#stems").inner_text()
