"""Make docs/screenshot.png: serve the app from a checkpoints folder, pick a preset and a point on the pad in
Debian's Chromium, and screenshot the page once both spectrograms are shown.

    .venv/bin/python docs/screenshot.py [--checkpoints checkpoints] [--out docs/screenshot.png]
"""
from __future__ import annotations

import argparse
import socket
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import app  # noqa: E402  (the repository root is not on sys.path when this file is run as a script)

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", default=str(ROOT / "checkpoints"))
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()
    pipeline, atlas = app.load_models(app.parse_args(["--checkpoints", args.checkpoints]))
    demo = app.build_demo(pipeline, atlas=atlas, out_dir=tempfile.mkdtemp(prefix="moodgen-shot-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(600_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.locator("#mood-pad [data-ready=true] svg.pad").wait_for()
            page.locator("#preset-happy").click()
            page.wait_for_function("document.querySelector('#summary').innerText.includes('V +0.70 / A +0.70')")
            for elem_id in ("gen-mel", "real-mel"):
                page.wait_for_function("id => { const i = document.querySelector(`#${id} img`);"
                                       " return i !== null && i.complete && i.naturalWidth > 0; }", arg=elem_id)
            page.locator("#mood-pad rect.heard").wait_for()
            page.screenshot(path=args.out, full_page=True)
            browser.close()
    finally:
        demo.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
