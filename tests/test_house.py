"""The shape of the house: imports flow train -> moodgen <- app without cycles, only the engines package knows
engine names, files stay small, and the package's pins match what Hugging Face Spaces installs."""
from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from moodgen.engines import engine_names

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("moodgen", "train", "moodgen_app")


def sources(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (ROOT / f).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """Every project module `path` imports, anywhere in the file (inside functions too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = [f"{node.module}.{a.name}" for a in node.names]
            # `from pkg import sub` imports the module pkg.sub; `from pkg import name` imports pkg itself
            names = submodules if all(s in known for s in submodules) else [node.module, *submodules]
        else:
            continue
        out |= {n for n in names if n in known}
    return out


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in sources(*PACKAGES)}
    return {name: imported_modules(path, set(files)) - {name} for name, path in files.items()}


def test_no_import_cycles():
    graph = import_graph()
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail(f"import cycle: {' -> '.join(trail[trail.index(nxt):] + [nxt])}")
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert len(graph) > 30  # the scan found the project's modules


def test_imports_flow_one_way():
    """train -> moodgen <- app: the library imports neither side, and training never imports the app."""
    forbidden = {"moodgen": ("train", "app", "moodgen_app", "benchmarks"), "train": ("app", "moodgen_app")}
    for package, outside in forbidden.items():
        for path in sources(package):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                    assert not any(n.split(".")[0] in outside for n in names), path


def test_only_the_engines_package_compares_engine_names():
    names = set(engine_names())
    assert {"notes", "mel"} <= names
    offenders = []
    for path in sources("moodgen", "train", "moodgen_app", "benchmarks") + [ROOT / "app.py"]:
        if "engines" in path.relative_to(ROOT).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                constants = [c.value for c in [node.left, *node.comparators] if isinstance(c, ast.Constant)]
                if any(isinstance(c, str) and c in names for c in constants):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders


def test_files_stay_small():
    long = [f"{p.relative_to(ROOT)}: {n}" for p in sources(*PACKAGES, "benchmarks") + [ROOT / "app.py"]
            if (n := len(p.read_text().splitlines())) > 400]
    assert not long


def pins(text: str) -> set[str]:
    return {line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()}


def test_spaces_requirements_match_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert pins((ROOT / "requirements.txt").read_text()) == set(project["dependencies"]) | set(
        project["optional-dependencies"]["app"])
