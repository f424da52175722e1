"""What the browser tests share: Debian's Chromium, the page's sizes, and scripts that read the page."""
from __future__ import annotations

from pathlib import Path

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

AXE = Path(__file__).with_name("vendor") / "axe.min.js"  # axe-core 4.14.1 (MPL-2.0), see vendor/README.md
# axe-core's serious and critical violations on the page, each as "rule: where" (its first three places)
AXE_SERIOUS = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
  .filter(v => ['serious', 'critical'].includes(v.impact))
  .map(v => `${v.id}: ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ')}`)"""
# WCAG 2 contrast of an element's drawn colour (an icon's currentColor) against the first opaque background
ICON_CONTRAST = """(selector) => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92
                                                   : ((v + 0.055) / 1.055) ** 2.4; })
                                     .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
  let e = document.querySelector(selector), back = [255, 255, 255];
  const fore = lum(rgb(getComputedStyle(e).color));
  for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
                                   if (c.length === 3 || c[3] === 1) { back = c.slice(0, 3); break; } }
  const [a, b] = [fore, lum(back)];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); }"""


def watch_requests(page) -> list[str]:
    """The page's requests from now on, as "METHOD path", and failed responses as "STATUS path"."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(f"{r.method} {r.url.split('/gradio_api/')[-1].split('?')[0]}"))
    page.on("response", lambda r: seen.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    return seen
