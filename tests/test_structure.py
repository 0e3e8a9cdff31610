"""The structure check of .ci/check_structure.py: on a made-up tree with one of each problem, and on vidnb."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / ".ci" / "check_structure.py"


def run_check(root: Path) -> tuple[int, list[str]]:
    out = subprocess.run([sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True, timeout=60)
    assert not out.stderr, out.stderr
    return out.returncode, out.stdout.splitlines()


def write(root: Path, name: str, code: str) -> None:
    path = root / "vidnb" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(code).lstrip("\n"))


def body(lines: int, indent: str = "    ") -> str:
    return "\n".join(f"{indent}x{i} = {i}" for i in range(lines))


def test_each_kind_of_problem_is_reported_once(tmp_path):
    write(tmp_path, "__init__.py", "")
    write(tmp_path, "_a.py", '''
        from typing import TYPE_CHECKING
        from . import _c
        from ._b import _hidden, public, __version__
        if TYPE_CHECKING:
            from ._d import Thing
        def lazy():
            from ._b import _lazy
    ''')
    # _a and _b import each other when imported: a cycle.
    write(tmp_path, "_b.py", "from ._a import lazy\n_hidden = public = __version__ = _lazy = 1\n")
    # _c imports _a only inside a function, _d is imported by _a only for type checking: no cycles.
    write(tmp_path, "_c.py", "def later():\n    from . import _a\n")
    write(tmp_path, "_d.py", "from ._a import lazy\nThing = int\n")
    write(tmp_path, "sub/__init__.py", "from .. import _b\n")  # a module, so not a private name
    write(tmp_path, "_big.py", (
        f"class Big:\n{body(300)}\n\n"  # 301 lines
        f"def too_long():\n{body(120)}\n\n"  # 121 lines
        f"def just_right():\n{body(119)}\n\n"  # 120 lines: allowed
        f"class Small:\n    def method(self):\n{body(120, ' ' * 8)}\n"
    ))

    code, lines = run_check(tmp_path)

    assert code == 1
    expected = [
        "vidnb/_a.py:3: imports private name _hidden from vidnb._b",
        "vidnb/_a.py:7: imports private name _lazy from vidnb._b",
        "vidnb/_big.py:1: class Big is 301 lines",
        "vidnb/_big.py:303: function too_long is 121 lines",
        "vidnb/_big.py:547: function Small.method is 121 lines",
        "import cycle: vidnb._a -> vidnb._b -> vidnb._a",
    ]
    assert len(lines) == len(expected), lines
    for want in expected:
        assert any(line.startswith(want) for line in lines), (want, lines)
    assert not any("just_right" in line or "__version__" in line or "_c" in line for line in lines), lines
    assert not any("_d" in line for line in lines), lines


def test_a_clean_tree_passes_silently(tmp_path):
    write(tmp_path, "__init__.py", "from ._a import public\n__version__ = '1'\n")
    write(tmp_path, "_a.py", "from . import _b\npublic = 1\n")
    write(tmp_path, "_b.py", "def later():\n    from ._a import public\n    from .. import __version__\n")

    assert run_check(tmp_path) == (0, [])


def test_the_vidnb_package_passes():
    code, lines = run_check(SCRIPT.parent.parent)
    assert (code, lines) == (0, []), "\n".join(lines)


def test_the_readme_lists_the_layers_of_the_contract():
    import re

    import pytest

    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")

    repo = SCRIPT.parent.parent
    contract = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    section = (repo / "README.md").read_text().split("## Architecture", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block is not None, "the README's architecture section has no layer list"
    assert block.group(1).splitlines() == contract["layers"]
    listed = {m for layer in contract["layers"] for m in re.split(r"\s*\|\s*", layer)}
    modules = {
        "vidnb." + p.stem for p in (repo / "vidnb").glob("*.py") if p.stem not in ("__init__", "__main__")
    } | {"vidnb.widgets"}
    assert modules == listed, "every module is in exactly one layer of the contract"
