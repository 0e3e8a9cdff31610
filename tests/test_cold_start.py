"""What a new process imports: ``vidnb --version`` nothing of the engine, ``vidnb get`` only a download's.

Python start-up and imports are most of a short command's time (aiohttp alone is about
0.3 s here), so each command imports what it uses and nothing else: a download whose answers
are all plain http ones never imports aiohttp. The lists below are modules a command must not
load; each check runs the real command in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import textwrap
from pathlib import Path

from helpers import make_video, run_python

import vidnb

INIT = Path(vidnb.__file__)
#: Modules no plain one-file download needs (aiohttp: of a plain http:// file).
NOT_FOR_A_FILE = [
    "aiohttp", "vidnb._fetch_hls", "vidnb._hls_download", "vidnb._playable", "vidnb._probe", "vidnb._dask",
    "vidnb.widgets", "m3u8", "cryptography", "av", "tqdm", "ipywidgets", "IPython", "distributed",
]  # fmt: skip


def modules_after(argv: list[str]) -> list[str]:
    """The modules loaded by ``python -m vidnb ARGV`` by the time it exits."""
    code = (
        "import atexit, json, runpy, sys\n"
        "atexit.register(lambda: print('MODULES ' + json.dumps(sorted(sys.modules))))\n"
        f"sys.argv = ['vidnb', *{argv!r}]\n"
        "try:\n"
        "    runpy.run_module('vidnb', run_name='__main__', alter_sys=True)\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
    )
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("MODULES "))
    return list(json.loads(line.removeprefix("MODULES ")))


def test_version_and_help_load_no_engine():
    for argv in (["--version"], ["get", "--help"]):
        loaded = modules_after(argv)
        assert "aiohttp" not in loaded and "asyncio" not in loaded
        ours = sorted(m for m in loaded if m.startswith("vidnb"))
        assert ours == ["vidnb", "vidnb._cli", "vidnb._fmt", "vidnb._version"]


def test_a_one_file_get_loads_only_what_a_file_download_needs(serve, tmp_path):
    url, _ = serve(make_video(200_000))
    loaded = modules_after(["get", url, "-o", str(tmp_path / "a.mp4"), "-q"])
    assert (tmp_path / "a.mp4").stat().st_size == 200_000
    assert [m for m in NOT_FOR_A_FILE if m in loaded] == []


def test_a_plain_http_batch_loads_no_aiohttp_and_an_answer_the_lean_path_declines_does(serve, tmp_path):
    datas = [make_video(200_000 + i) for i in range(3)]
    urls = [serve(d, name=f"v{i}.mp4")[0] for i, d in enumerate(datas)]
    chunked, chunked_route = serve(datas[0], chunked=True)
    code = textwrap.dedent("""
        import sys
        import vidnb
        *urls, chunked, folder = sys.argv[1:]
        vidnb.download_many_sync(urls, folder, progress=False).raise_for_errors()
        vidnb.download_sync(urls[0], folder + "/one.mp4", progress=False)
        print("aiohttp" in sys.modules)
        vidnb.download_sync(chunked, folder + "/chunked.mp4", progress=False)
        print("aiohttp" in sys.modules)
    """)
    done = run_python(code, *urls, chunked, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
    assert [(tmp_path / f"v{i}.mp4").read_bytes() for i in range(3)] == datas
    assert (tmp_path / "one.mp4").read_bytes() == (tmp_path / "chunked.mp4").read_bytes() == datas[0]
    assert len(chunked_route.requests) == 2, "declined by the lean path, then asked again by aiohttp"


def test_import_vidnb_loads_nothing_until_a_name_is_used():
    out = run_python("import sys, vidnb; print(sorted(m for m in sys.modules if m.startswith(('vidnb', 'aiohttp'))))")
    assert out.stdout.strip() == "['vidnb', 'vidnb._version']", out.stderr
    out = run_python("import sys, vidnb; vidnb.download; print(sorted({'vidnb._engine', 'aiohttp'} & {*sys.modules}))")
    assert out.stdout.strip() == "['vidnb._engine']", out.stderr


def test_every_public_name_resolves_and_the_type_checking_imports_agree():
    assert all(getattr(vidnb, name) is not None for name in vidnb.__all__)
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    (block,) = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"]
    imported = {
        f"vidnb.{node.module}": tuple(a.name for a in node.names)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
    }
    # The imports type checkers see and the table used at run time name the same things.
    assert imported == vidnb._PUBLIC
    assert {n for names in imported.values() for n in names} <= set(vidnb.__all__)
