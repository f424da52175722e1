"""Make the README's screenshots: serve the app from a checkpoints folder and photograph it in Debian's Chromium.

    .venv/bin/python docs/screenshot.py [--checkpoints checkpoints] [--out docs] [--axe]

Writes screenshot-desktop.png (1280 x 800, after a preset click), screenshot-phone.png (390 x 844, the first screen),
screenshot-phone-result.png (the same phone after a preset click, the result scrolled into view),
screenshot-journey.png (a path drawn on the pad, its journey playing), screenshot-live.png (live mode playing while
the dot is dragged: the pad, its live marker and trail, the live bar beside it) and screenshot-live-phone.png (the
same on a phone: the live bar under the pad). With --axe, instead: axe-core's findings (tests/vendor/axe.min.js)
on the page at both sizes, first screen and with every accordion open, journey mode and a refused duration, as a
Markdown table (the app's own markup apart from Gradio's widgets).
"""
from __future__ import annotations

import argparse
import socket
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from moodgen_app import server as app  # noqa: E402  (the repository root is not on sys.path when this file is run as a script)

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# a result is on screen: the button reads "Generate" again and both spectrograms are decoded
AXE = ROOT / "tests" / "vendor" / "axe.min.js"
# every violation's rule, impact and places, each place marked as the app's own markup (the pad, the number boxes'
# messages) or Gradio's widgets
AXE_FINDINGS = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations.flatMap(v =>
  v.nodes.map(n => { const e = document.querySelector(n.target[0]);
    const own = e !== null && e.closest('#mood-pad, .field-message') !== null;
    return {rule: v.id, impact: v.impact, own, where: n.target.join(' ')}; }))"""
RESULT_SHOWN = """([v, a]) => document.querySelector('#summary').innerText.includes(`aimed at V ${v} / A ${a}`)
  && document.querySelector('#generate').innerText.trim() === 'Generate'
  && ['gen-mel', 'real-mel'].every(id => { const i = document.querySelector(`#${id} img`);
                                           return i !== null && i.complete && i.naturalWidth > 0; })"""


def open_page(browser, url: str, viewport: dict, timeout_ms: int) -> Page:
    """A page at `viewport` once its first-screen example is shown."""
    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(timeout_ms)
    page.goto(url)
    page.locator("#mood-pad [data-ready=true] svg.pad").wait_for()
    page.wait_for_function(RESULT_SHOWN, arg=["+0.70", "+0.70"])
    return page


def click_preset(page: Page, name: str, shown: tuple[str, str]) -> None:
    page.locator(f"#preset-{name}").click()
    page.wait_for_function(RESULT_SHOWN, arg=list(shown))
    page.wait_for_timeout(300)  # let the player draw its waveform


def pad_point(page: Page, valence: float, arousal: float) -> tuple[float, float]:
    box = page.locator("#mood-pad svg.pad").bounding_box()
    view = page.locator("#mood-pad svg.pad").evaluate("s => [s.viewBox.baseVal.x, s.viewBox.baseVal.width]")
    scale = box["width"] / view[1]
    return (box["x"] + ((valence + 1) * 100 - view[0]) * scale, box["y"] + ((1 - arousal) * 100 - view[0]) * scale)


def draw_journey(page: Page) -> None:
    page.locator("#pad-mode label", has_text="journey").click()
    page.mouse.move(*pad_point(page, -0.7, -0.6))
    page.mouse.down()
    for v, a in [(-0.6, 0.1), (-0.1, 0.6), (0.4, 0.3), (0.7, -0.5)]:
        page.mouse.move(*pad_point(page, v, a), steps=8)
    page.mouse.up()
    page.wait_for_function(RESULT_SHOWN, arg=["+0.70", "-0.50 at the end"])
    page.locator("#gen-audio button.play-pause-button").click()
    page.wait_for_timeout(4000)  # the playhead on its way along the curve


def play_live(page: Page) -> None:
    page.locator("#live-play").click()
    page.locator("#mood-pad svg.pad circle.live-marker").wait_for()
    page.mouse.move(*pad_point(page, 0.7, 0.7))
    page.mouse.down()
    for v, a in [(0.3, 0.2), (-0.2, -0.1), (-0.5, -0.5)]:  # a slow drag: the marker and its trail follow
        page.mouse.move(*pad_point(page, v, a), steps=10)
        page.wait_for_timeout(700)
    page.wait_for_timeout(300)


def axe_table(browser, url: str, timeout_ms: int) -> str:
    """axe-core's violations at both sizes and in two states, as Markdown: one row per rule and state."""
    rows = []
    for size, viewport in (("1280x800", DESKTOP), ("390x844", PHONE)):
        page = open_page(browser, url, viewport, timeout_ms)
        page.add_script_tag(path=str(AXE))
        states = {"first screen": page.evaluate(AXE_FINDINGS)}
        for name in ("Parameters (JSON)", "How far to trust the judge", "Advanced"):
            page.get_by_text(name, exact=True).click()
        page.locator("#pad-mode label", has_text="journey").click()
        page.locator("#duration input[type=number]").fill("-3")
        page.wait_for_function("document.querySelector('#duration-message')?.innerText.length > 0")
        states["accordions open, journey mode, a refused duration"] = page.evaluate(AXE_FINDINGS)
        for state, found in states.items():
            for rule in sorted({f["rule"] for f in found}):
                hits = [f for f in found if f["rule"] == rule]
                own = sum(f["own"] for f in hits)
                rows.append(f"| {size} | {state} | {rule} | {hits[0]['impact']} | {own} | {len(hits) - own} | "
                            f"`{hits[0]['where']}` |")
            if not found:
                rows.append(f"| {size} | {state} | none | | 0 | 0 | |")
        page.close()
    return "\n".join(["| size | state | rule | impact | app's own | Gradio's | first place |",
                      "|---|---|---|---|---|---|---|", *rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", default=str(ROOT / "checkpoints"))
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for any one step")
    ap.add_argument("--axe", action="store_true", help="print axe-core's findings instead of taking screenshots")
    args = ap.parse_args()
    pipeline, atlas = app.load_models(app.parse_args(["--checkpoints", args.checkpoints]))
    demo = app.build_demo(pipeline, atlas=atlas, out_dir=tempfile.mkdtemp(prefix="moodgen-shot-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **app.launch_options(demo))
    url, timeout_ms = f"http://127.0.0.1:{port}/", int(args.timeout * 1000)
    written = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            if args.axe:
                print(axe_table(browser, url, timeout_ms))
                return
            page = open_page(browser, url, DESKTOP, timeout_ms)
            click_preset(page, "sad", ("-0.70", "-0.70"))
            page.screenshot(path=args.out / "screenshot-desktop.png")
            written.append("screenshot-desktop.png")
            page = open_page(browser, url, PHONE, timeout_ms)
            page.screenshot(path=args.out / "screenshot-phone.png")
            click_preset(page, "relaxed", ("+0.70", "-0.70"))
            page.screenshot(path=args.out / "screenshot-phone-result.png")
            written += ["screenshot-phone.png", "screenshot-phone-result.png"]
            page = open_page(browser, url, DESKTOP, timeout_ms)
            draw_journey(page)
            page.screenshot(path=args.out / "screenshot-journey.png")
            page = open_page(browser, url, DESKTOP, timeout_ms)
            play_live(page)
            pad, bar = (page.locator(f"#{e}").bounding_box() for e in ("controls", "live"))
            page.screenshot(path=args.out / "screenshot-live.png", clip={
                "x": pad["x"], "y": pad["y"], "width": bar["x"] + bar["width"] - pad["x"], "height": 480})
            page.mouse.up()
            page = open_page(browser, url, PHONE, timeout_ms)
            play_live(page)
            page.screenshot(path=args.out / "screenshot-live-phone.png")
            page.mouse.up()
            written += ["screenshot-journey.png", "screenshot-live.png", "screenshot-live-phone.png"]
            browser.close()
    finally:
        demo.close()
    print("wrote", ", ".join(str(args.out / name) for name in written))


if __name__ == "__main__":
    main()
