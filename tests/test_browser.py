"""The ranking widget as a person uses it: JupyterLab in headless Chromium, run the `rank-yourself` cell of notebook
03, rank every completion with real clicks (a tie included), press Submit, and find one valid human judgement in the
labels file. Leaves a screenshot in `test-output/widget_submitted.png`.

Needs Debian's Chromium (`/usr/bin/chromium`; `.ci/run` installs it) and pip's `playwright`; skipped without them.
Playwright's own browser download is not used: it cannot work offline.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "03_reward_model.ipynb"
CELL_SOURCE = "rank_yourself("
"""How the test finds the cell tagged `rank-yourself` (JupyterLab does not show tags in the page)."""
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = REPO / "test-output" / "widget_submitted.png"
FAILURE_SCREENSHOT = REPO / "test-output" / "widget_failure.png"
BUDGET_S = 85.0
"""The whole test, server start to screenshot; a cold kernel that builds the smoke data takes about 20 s of it."""
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

LAB_SETTINGS = {
    # never write outputs into the repository's notebook
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    # attach every cell to the page, so the cell is found however far down the notebook it is
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # no "fetch Jupyter news?" toast over the notebook, no request to the internet
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                          "checkForUpdates": False},
}


class Deadline:
    """Milliseconds left of the test's budget, for each wait, so the sum of the waits stays under the budget."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def ms(self, cap_s: float | None = None) -> float:
        left = max(self.end - time.monotonic(), 0.1)
        return 1000 * (left if cap_s is None else min(left, cap_s))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_environment(tmp: Path) -> dict[str, str]:
    """The server's (and so the kernel's) environment: smoke profile, offline, everything written under `tmp`."""
    for rel, settings in LAB_SETTINGS.items():
        path = tmp / "lab-settings" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    env = dict(os.environ)
    env.update(RLHF_PROFILE="smoke", RLHF_ARTIFACTS=str(tmp / "artifacts"), HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1",
               JUPYTERLAB_SETTINGS_DIR=str(tmp / "lab-settings"), JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               JUPYTER_CONFIG_DIR=str(tmp / "jupyter-config"), JUPYTER_RUNTIME_DIR=str(tmp / "jupyter-runtime"),
               IPYTHONDIR=str(tmp / "ipython"))
    return env


def wait_for_server(proc: subprocess.Popen, url: str, log: Path, deadline: Deadline) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 never goes through a proxy
    end = time.monotonic() + deadline.ms(40) / 1000
    while time.monotonic() < end:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited with code {proc.returncode} before serving:\n{tail(log)}")
        try:
            with opener.open(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"jupyter lab did not answer {url.split('?')[0]} in time:\n{tail(log)}")


def tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM lets the server shut its kernels down; its process group (only what it started) is killed if not."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.mark.slow
def test_rank_yourself_in_jupyterlab(tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run this test")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is missing: pip install -r requirements.txt")
    if not NOTEBOOK.exists():
        pytest.fail(f"{NOTEBOOK} does not exist: this test runs its code cell calling {CELL_SOURCE}...) "
                    f"(tag rank-yourself); write the notebook first")
    root = REPO if NOTEBOOK.is_relative_to(REPO) else NOTEBOOK.parent
    notebook_bytes = NOTEBOOK.read_bytes()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    for old in (SCREENSHOT, FAILURE_SCREENSHOT):  # no picture from an earlier run
        old.unlink(missing_ok=True)

    deadline = Deadline(BUDGET_S)
    env = lab_environment(tmp_path)
    labels = Path(env["RLHF_ARTIFACTS"]) / "smoke" / "rm" / "human_labels.jsonl"
    port, token = free_port(), secrets.token_hex(16)
    log = tmp_path / "jupyter.log"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    browser_log: list[str] = []
    with open(log, "wb") as log_file:
        server = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=log_file, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    pw = browser = page = None
    try:
        wait_for_server(server, f"http://127.0.0.1:{port}/api/status?token={token}", log, deadline)
        pw = sync_playwright().start()
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.on("console", lambda m: browser_log.append(f"{m.type}: {m.text}"))
        rel = NOTEBOOK.relative_to(root).as_posix()
        page.goto(f"http://127.0.0.1:{port}/lab/tree/{rel}?token={token}", timeout=deadline.ms(30))

        # the cell, found by its source; then wait for the kernel before running it
        editor = page.locator(".jp-InputArea-editor", has_text=CELL_SOURCE)
        cell = page.locator(".jp-NotebookPanel .jp-CodeCell", has=editor).first
        cell.wait_for(timeout=deadline.ms(30))
        # the status bar says "Python 3 (ipykernel) | Idle" once the kernel is up ("No Kernel | ..." before)
        kernel_idle = page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"^(?!No Kernel).+ \| Idle$"))
        kernel_idle.first.wait_for(timeout=deadline.ms(40))
        cell.locator(".jp-InputPrompt").click()
        page.keyboard.press("Shift+Enter")

        # "[1]:" = this kernel ran the cell (outputs saved in the notebook could show an old widget before that)
        cell.locator(".jp-InputPrompt", has_text="[1]:").wait_for(timeout=deadline.ms())
        widget = cell.locator(".rlhf-ranking-widget")
        error = cell.locator(".jp-OutputArea-output", has_text="Traceback (most recent call last)")
        widget.or_(error).first.wait_for(timeout=deadline.ms(20))
        if not widget.count():
            pytest.fail(f"the rank-yourself cell failed:\n{error.first.inner_text()[-3000:]}")
        total = re.search(r"Prompt 1 of (\d+)", widget.inner_text())
        assert total, widget.inner_text()[:200]
        total = int(total.group(1))

        # rank with real selects: best, then a tie for second, then the rest in order (1, 2, 2, 3, ...)
        selects = widget.locator(".rlhf-rank select")
        k = selects.count()
        ranks = [1, 2] + list(range(2, k))
        for i, r in enumerate(ranks):
            selects.nth(i).select_option(label=str(r))
        handle = widget.locator(".rlhf-likert .noUi-handle").first  # the Likert slider, moved with the keyboard
        handle.focus()
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")
        widget.locator(".rlhf-flag-hallucination input").nth(k - 1).check()
        widget.locator("button.rlhf-submit").click()

        # the form moves on: the next prompt with fresh ranks, and the saved ranking summarised at the top
        page.wait_for_function(
            """el => el.querySelector('.rlhf-status').innerText.includes('Saved.')
                     && el.innerText.includes('Prompt 2 of %d')
                     && [...el.querySelectorAll('.rlhf-rank select')].every(s => s.selectedIndex === 0)""" % total,
            arg=widget.element_handle(), timeout=deadline.ms())
        assert "Saved your ranking" in widget.locator(".rlhf-last-saved").inner_text()
        height = widget.evaluate("el => el.getBoundingClientRect().height")
        page.set_viewport_size({"width": 1280, "height": min(int(height) + 300, 6000)})  # the whole form in view
        widget.scroll_into_view_if_needed()
        widget.screenshot(path=str(SCREENSHOT))

        from rlhf_lib.labels import load_judgements

        [j] = load_judgements(labels)
        assert (j.source, j.labeler_id) == ("human", "human:you")
        assert j.ranks == ranks and len(j.completions) == k
        assert j.likert == [6] + [4] * (k - 1), "the Likert slider did not follow the arrow keys"
        assert j.flags[k - 1]["hallucination"] and sum(sum(d.values()) for d in j.flags) == 1
    except Exception:
        if page is not None:
            try:
                page.screenshot(path=str(FAILURE_SCREENSHOT))
                print(f"screenshot of the failure: {FAILURE_SCREENSHOT}")
            except Exception as err:  # the page may be gone; the original error matters more
                print(f"no failure screenshot: {err}")
        print(f"--- jupyter log ---\n{tail(log)}\n--- browser console ---\n" + "\n".join(browser_log[-40:]))
        raise
    finally:
        if browser is not None:
            browser.close()
        if pw is not None:
            pw.stop()
        stop_server(server)
    assert NOTEBOOK.read_bytes() == notebook_bytes, f"the test changed {NOTEBOOK}; restore it from version control"
