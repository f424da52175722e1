"""The app's scripts live in static files (Python keeps only one-line calls), and every one of them parses."""
from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "moodgen_app"


def test_no_javascript_in_python_strings_beyond_one_line():
    long = []
    for path in sorted(APP.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "=>" in node.value:
                if "\n" in node.value.strip():
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not long, "multi-line JavaScript belongs in moodgen_app/static/*.js"


@pytest.mark.skipif(shutil.which("node") is None, reason="node not found (apt-get install nodejs)")
@pytest.mark.parametrize("script", sorted(p.name for p in (APP / "static").glob("*.js")))
def test_static_scripts_parse(script):
    done = subprocess.run(["node", "--check", str(APP / "static" / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
