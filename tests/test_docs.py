"""The README is a front door (at most 150 lines) and every page it or docs/ links to exists."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)|src=\"([^\"]+)\"")


def local_links(page: Path) -> list[Path]:
    targets = [a or b for a, b in LINK.findall(page.read_text())]
    return [page.parent / t for t in targets if not re.match(r"[a-z]+:", t)]


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail to a page in docs/"


def test_every_local_link_exists():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    missing = [f"{page.relative_to(ROOT)} -> {link}" for page in pages for link in local_links(page)
               if not link.exists()]
    assert not missing


def test_readme_links_every_docs_page():
    linked = {link.resolve() for link in local_links(ROOT / "README.md")}
    unlinked = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert not unlinked, f"add these to the README's Docs list: {unlinked}"
