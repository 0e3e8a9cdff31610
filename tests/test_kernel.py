"""The kernel-loop behaviour in a real Jupyter kernel, watched through its IOPub messages.

What a browser would see is the stream of ``comm_msg`` widget updates: they must arrive
while a blocking cell runs, keep arriving after a background task's cell ended, and an
interrupt must leave a ``.part`` that the next call resumes. Each test runs against the
installed ipykernel (7.x) and, when its venv exists, ipykernel 6.x (see IPYKERNEL6_PYTHON).
"""

from __future__ import annotations

import os
import time

import pytest
from nb_kernel import Kernel, kernel_argv, python_has

pytestmark = pytest.mark.notebook

#: A Python with ipykernel<7 and vidnb's dependencies; .ci/run creates it (see the README).
IPYKERNEL6_PYTHON = os.environ.get("VIDNB_IPYKERNEL6_PYTHON", "/tmp/vidnb-ipykernel6/bin/python")

SLOW = "srv.url('/slow/sample.mp4?rate={rate}')"


@pytest.fixture(scope="module", params=["installed", "ipykernel6"])
def kernel(request, tmp_path_factory) -> Kernel:
    argv = None
    if request.param == "ipykernel6":
        version = python_has(IPYKERNEL6_PYTHON, "ipykernel")
        if version is None or not version.startswith("6."):
            pytest.skip(
                f"no ipykernel 6.x at {IPYKERNEL6_PYTHON} (set VIDNB_IPYKERNEL6_PYTHON, or: python -m venv "
                "/tmp/vidnb-ipykernel6 && /tmp/vidnb-ipykernel6/bin/pip install 'ipykernel>=6.29,<7' "
                "'ipywidgets>=8.1' tqdm nest-asyncio2 aiohttp m3u8 cryptography)"
            )
        argv = kernel_argv(IPYKERNEL6_PYTHON)
    k = Kernel(tmp_path_factory.mktemp(f"kernel-{request.param}"), argv=argv)
    k.ok(
        "import hashlib, os, threading, vidnb, vidnb.demo, ipykernel\n"
        "srv = vidnb.demo.sample_server()\n"
        "SAMPLE_SHA = vidnb.demo.sample_sha256('sample.mp4')\n"
        "def sha(p): return hashlib.sha256(open(p, 'rb').read()).hexdigest()\n"
        "print(ipykernel.__version__)"
    )
    yield k
    k.shutdown()


def bars(k: Kernel, start: float, end: float = float("inf")) -> dict[str, list[tuple[float, float]]]:
    """Progress values per widget (comm id) that arrived in ``[start, end)``."""
    out: dict[str, list[tuple[float, float]]] = {}
    for t, m in k.comm_updates(start, end):
        value = m["content"]["data"]["state"].get("value")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.setdefault(m["content"]["comm_id"], []).append((t, value))
    return out


def styles(k: Kernel, start: float) -> list[str]:
    return [m["content"]["data"]["state"]["bar_style"] for _, m in k.comm_updates(start)
            if "bar_style" in m["content"]["data"]["state"]]


def test_sync_call_streams_progress_while_the_cell_blocks_and_other_downloads_go_on(kernel):
    k = kernel
    k.ok(f"bg = vidnb.start({SLOW.format(rate=50_000)}.replace('mp4', 'webm'), 'bg.webm', overwrite=True)")
    ex = k.ok(f"r = vidnb.download_sync({SLOW.format(rate=50_000)}, 'sync.mp4', overwrite=True)\nr")
    busy = bars(k, ex.sent, ex.replied)
    assert ex.replied - ex.sent > 1.5
    # The cell's own bar and the background task's bar both moved while the cell blocked.
    moving = [vals for vals in busy.values() if len({v for _, v in vals}) >= 5]
    assert len(moving) == 2, {c: len(v) for c, v in busy.items()}
    for vals in moving:
        span = vals[-1][0] - vals[0][0]
        assert len(vals) <= 10 * span + 3  # throttled: about 10 updates a second at most
    assert "success" in styles(k, ex.sent)
    k.wait_for(lambda: k.ok("print(bg.done())").stdout().strip() == "True", what="background task")
    out = k.ok("print(sha('sync.mp4') == SAMPLE_SHA, repr(bg))").stdout()
    assert out.startswith("True <DownloadTask bg.webm: done, 123.7 KiB of 123.7 KiB (100%)>")


def test_top_level_await_streams_progress(kernel):
    ex = kernel.ok(f"r = await vidnb.download({SLOW.format(rate=80_000)}, 'awaited.mp4', overwrite=True)\nr")
    (values,) = [v for v in bars(kernel, ex.sent, ex.replied).values() if len(v) > 3]
    assert len(values) >= 5 and values[-1][1] == 107920
    assert "DownloadResult('awaited.mp4', 105.4 KiB, mp4" in ex.text()


def test_background_task_keeps_updating_after_its_cell_ended(kernel):
    k = kernel
    ex = k.ok(f"task = vidnb.start({SLOW.format(rate=60_000)}, 'bg.mp4', overwrite=True)\ntask")
    assert ex.replied - ex.sent < 1.0
    assert "<DownloadTask bg.mp4: running" in ex.text()
    # The bar was drawn by the cell that started the task (not by whichever cell runs later).
    assert any(m["msg_type"] == "display_data" and "application/vnd.jupyter.widget-view+json" in m["content"]["data"]
               for m in ex.outputs)
    k.wait_for(lambda: "success" in styles(k, ex.sent), timeout=20, what="the bar to end green")
    after = [v for vals in bars(k, ex.idle).values() for v in vals]
    assert len(after) >= 8 and max(v for _, v in after) == 107920
    out = k.ok("res = await task\nprint(res.size, sha(res.path) == SAMPLE_SHA, vidnb.running_tasks())").stdout()
    assert out.strip() == "107920 True []"


def test_background_failure_shows_on_its_bar_and_in_the_log(kernel):
    k = kernel
    ex = k.ok(
        "import logging\n"
        "class Keep(logging.Handler):\n"
        "    def __init__(self): super().__init__(logging.ERROR); self.lines = []\n"
        "    def emit(self, record): self.lines.append(record.getMessage())\n"
        "keep = Keep(); logging.getLogger('vidnb').addHandler(keep)\n"
        "t = vidnb.start(srv.url('/status/404'), 'missing.mp4', retries=0)"
    )
    k.wait_for(lambda: "danger" in styles(k, ex.sent), what="a red bar")
    texts = [m["content"]["data"]["state"]["value"] for _, m in k.comm_updates(ex.sent)
             if isinstance(m["content"]["data"]["state"].get("value"), str)]
    assert any("404" in t and "failed" in t for t in texts)
    out = k.ok("logging.getLogger('vidnb').removeHandler(keep)\nprint(keep.lines)\nprint(repr(t))").stdout()
    assert "background download of" in out and "HTTP 404" in out  # logged although nobody awaited it
    assert "<DownloadTask missing.mp4: failed: HTTP 404" in out


def test_interrupt_cancels_a_sync_download_and_the_next_call_resumes(kernel):
    k = kernel
    url = SLOW.format(rate=40_000)

    def interrupt() -> None:
        k.wait_for(lambda: any(len(v) >= 4 for v in bars(k, started).values()), what="some progress")
        k.km.interrupt_kernel()

    started = time.monotonic()
    ex = k.execute(f"r = vidnb.download_sync({url}, 'intr.mp4', overwrite=True)", during=interrupt)
    assert ex.status == "error" and ex.ename == "KeyboardInterrupt"
    assert ex.replied - ex.sent < 2.5  # stopped, not finished (it takes 2.7 s)
    assert styles(k, started)[-1] == "warning"  # the bar is marked cancelled
    part = int(k.ok("print(os.path.getsize('intr.mp4.part'), os.path.exists('intr.mp4'))").stdout().split()[0])
    assert 0 < part < 107920
    out = k.ok(f"r = vidnb.download_sync({url}, 'intr.mp4')\nprint(r.resumed, sha('intr.mp4') == SAMPLE_SHA)").stdout()
    assert out.strip() == "True True"


def test_clicks_from_another_thread_hop_onto_the_kernel_loop(kernel):
    """What ipykernel 7.0-7.3 with JupyterLab 4.4+ do: the callback runs on a subshell thread."""
    k = kernel
    k.ok("panel = vidnb.DownloadPanel('panel-dl')\npanel")
    ex = k.ok(
        "panel.urls.value = srv.url('/slow/sample.mp4?rate=100000')\n"
        "th = threading.Thread(target=panel.download_button.click); th.start(); th.join()"
    )
    k.wait_for(lambda: k.ok("print(bool(panel.rows) and panel.rows[0].state)").stdout().strip() == "done", what="done")
    out = k.ok(
        "import asyncio\n"
        "print(panel.rows[0].task.loop is asyncio.get_running_loop(), sha(panel.rows[0].result.path) == SAMPLE_SHA)"
    ).stdout()
    assert out.strip() == "True True"
    assert len(bars(k, ex.sent)) >= 1
