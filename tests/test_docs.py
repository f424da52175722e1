"""The README is a front door (at most 150 lines); every page it or docs/ links to exists, and so does every module
they tell you to run (`python -m ...`)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)|src=\"([^\"]+)\"")
RUN = re.compile(r"python -m ([A-Za-z_][\w.]*)")
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def local_links(page: Path) -> list[Path]:
    targets = [a or b for a, b in LINK.findall(page.read_text())]
    return [page.parent / t for t in targets if not re.match(r"[a-z]+:", t)]


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail to a page in docs/"


def test_every_local_link_exists():
    missing = [f"{page.relative_to(ROOT)} -> {link}" for page in PAGES for link in local_links(page)
               if not link.exists()]
    assert not missing


def test_every_command_runs_a_module_of_the_repository():
    """`python -m benchmarks.x` names a file that exists (benchmarks move into folders by purpose); modules of
    other packages (pytest, pip) are not checked."""
    ours = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")
            and (any(p.glob("*.py")) or any(p.glob("*/*.py")))}  # packages, namespace ones (benchmarks) too
    named = {(page.name, module) for page in PAGES for module in RUN.findall(page.read_text())}
    assert any(module.startswith("benchmarks.") for _, module in named)
    missing = [f"{page}: python -m {module}" for page, module in sorted(named) if module.split(".")[0] in ours
               and not (ROOT / f"{module.replace('.', '/')}.py").is_file()
               and not (ROOT / module.replace(".", "/") / "__main__.py").is_file()]
    assert not missing


def test_readme_links_every_docs_page():
    linked = {link.resolve() for link in local_links(ROOT / "README.md")}
    unlinked = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert not unlinked, f"add these to the README's Docs list: {unlinked}"
