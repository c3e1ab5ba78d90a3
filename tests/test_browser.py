"""JupyterLab in a real browser: a learner opens a course notebook, runs all cells from the Run menu, saves it.

JupyterLab (from this environment) serves a temporary folder on 127.0.0.1 with a token, its network features off;
headless Chromium (Debian's, driven by playwright) runs the notebook through the UI. The error detector reads
the rendered outputs, and is itself checked on a notebook with a deliberately failing cell.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from genai_roadmap import browser
from genai_roadmap.course import REPO_ROOT

NOTEBOOK = "phase1_foundations/01_math_and_statistics.ipynb"  # about 15 s: the fastest notebook with a plot
RUN_TIMEOUT_MS = 300_000
pytestmark = pytest.mark.xdist_group("browser")  # its own server, port and folders: safe beside other workers

# JupyterLab with nothing that reaches the internet: no news feed, no update check, no PyPI extension manager.
LAB_OPTIONS = ["--no-browser", "--ServerApp.ip=127.0.0.1", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly",
               "--ServerApp.terminals_enabled=False", *(["--allow-root"] if os.geteuid() == 0 else [])]  # CI is root
# The learner's settings (also: don't ask about news in a toast), kept in the test's folder, never in ~/.jupyter.
LAB_SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings":
                {"fetchNews": "false", "checkForUpdates": False}}
# The kernel runs offline on one thread, as under `make test`; matplotlib keeps Jupyter's inline backend.
KERNEL_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}

# What an error looks like once JupyterLab has rendered it: a stderr-typed output holding an IPython traceback
# ("Traceback (most recent call last)"; a SyntaxError shows only its last line). Warnings are stderr too, not errors.
NOTEBOOK_JS = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook on show (Lumino hides the other tabs)
ERRORS_JS = f"""() => [...document.querySelectorAll(
        '{NOTEBOOK_JS} .jp-CodeCell .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(e => e.textContent)
    .filter(t => /Traceback \\(most recent call last\\)|^[A-Za-z_][\\w.]*(Error|Exception)(:|\\s|$)/m.test(t))
    .map(t => t.slice(0, 400))"""
PROMPTS_JS = (f"() => [...document.querySelectorAll('{NOTEBOOK_JS} .jp-CodeCell .jp-InputPrompt')]"
              ".map(e => e.textContent.trim())")
# The status bar's "Python 3 (ipykernel) | Idle" (the toolbar's indicator also says idle before a kernel exists).
IDLE_JS = r"""() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]
    .some(e => /^(?!No Kernel).+ \| Idle$/.test(e.textContent.trim()))"""


# Notebooks with a deliberately failing third cell (after a print and a warning): the detector must see the error.
FAILING = {"fails_at_run_time.ipynb": ("1 / 0", "ZeroDivisionError"),
           "fails_to_parse.ipynb": ("print('never closed'", "SyntaxError")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cleared_copy(src: Path, dst: Path) -> Path:
    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, dst)
    return dst


class Lab:
    """A JupyterLab server on 127.0.0.1 serving `root`; stop() ends it and its kernels."""

    def __init__(self, root: Path):
        import psutil

        self.root, self.port, self.token = root, _free_port(), secrets.token_hex(16)
        state = root.parent / f"{root.name}-jupyter"
        for name, settings in LAB_SETTINGS.items():
            (state / "settings" / name).parent.mkdir(parents=True, exist_ok=True)
            (state / "settings" / name).write_text(json.dumps(settings))
        env = {**os.environ, **KERNEL_ENV, "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
               "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
               "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"), "IPYTHONDIR": str(state / "ipython")}
        env.pop("MPLBACKEND", None)  # make test sets Agg for nbval; a learner's Lab shows plots inline
        self.log = (state / "lab.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", *LAB_OPTIONS, f"--ServerApp.port={self.port}",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self._psutil = psutil.Process(self.process.pid)
        self._wait_until_up(timeout=60)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def _wait_until_up(self, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.process.returncode}; see {self.log.name}")
            try:
                urllib.request.urlopen(self.url("api/status"), timeout=2)
                return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"JupyterLab did not answer on port {self.port} within {timeout} s; see {self.log.name}")

    def stop(self):
        """Shut the server down through its API (it stops its kernels), then end whatever is left."""
        try:
            children = self._psutil.children(recursive=True)
        except Exception:  # the server is already gone
            children = []
        try:
            request = urllib.request.Request(self.url("api/shutdown"), method="POST")
            urllib.request.urlopen(request, timeout=10)
            self.process.wait(timeout=20)
        except Exception:
            self.process.kill()
            self.process.wait(timeout=10)
        for child in children:  # kernels run in sessions of their own: a process group kill would miss them
            if child.is_running():
                child.kill()
        self.log.close()
        alive = [c.pid for c in children if c.is_running() and c.status() != "zombie"]
        assert not alive, f"processes left behind by JupyterLab: {alive}"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lab")
    _cleared_copy(REPO_ROOT / NOTEBOOK, root / Path(NOTEBOOK).name)
    for name, failing in FAILING.items():
        nb = new_notebook(cells=[new_code_cell("print('fine')"),
                                 new_code_cell("import warnings\nwarnings.warn('only a warning, not an error')"),
                                 new_code_cell(failing[0]), new_code_cell("print('never reached')")],
                          metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
        nbformat.write(nb, root / name)
    return root


@pytest.fixture(scope="module")
def lab(workdir):
    reason = browser.missing()
    if reason:
        (pytest.fail if browser.browser_required() else pytest.skip)(reason)
    server = Lab(workdir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def context(lab):
    with browser.chromium(viewport={"width": 1400, "height": 1000}) as context:
        yield context


def run_all_and_save(context, lab: Lab, name: str):
    """Open a notebook in Lab, Run > Run All Cells, wait for the kernel, save with Ctrl+S; return the page."""
    page = context.new_page()
    page.goto(lab.url(f"lab/tree/{name}") + "&reset")  # reset: not the tabs of the last page's workspace
    page.locator(f"{NOTEBOOK_JS} .jp-CodeCell").first.wait_for(timeout=60_000)
    page.wait_for_function(IDLE_JS, timeout=60_000)  # the kernel has started and is connected
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator('li.lm-Menu-item[data-command="runmenu:run-all"]').click()
    # Done: something ran, nothing is queued or running ([*]), the kernel is idle. Run All stops at an error.
    done = "prompts.some(p => /^\\[\\d+\\]:$/.test(p)) && !prompts.includes('[*]:')"
    page.wait_for_function(f"() => {{ const prompts = ({PROMPTS_JS})(); return {done} && ({IDLE_JS})(); }}",
                           timeout=RUN_TIMEOUT_MS, polling=500)
    page.keyboard.press("Escape")  # command mode, as a learner would before saving
    page.keyboard.press("Control+s")
    page.wait_for_function("() => !document.querySelector('.jp-mod-current.jp-mod-dirty')", timeout=30_000)
    return page


@pytest.mark.parametrize("name", FAILING)
def test_detector_catches_a_failing_cell(context, lab, workdir, name):
    ename = FAILING[name][1]
    page = run_all_and_save(context, lab, name)
    errors = page.evaluate(ERRORS_JS)
    prompts = page.evaluate(PROMPTS_JS)
    page.close()
    assert len(errors) == 1 and ename in errors[0], f"the detector saw {errors}"  # and not the warning
    assert prompts[:3] == ["[1]:", "[2]:", "[3]:"] and prompts[3] in ("[ ]:", "[]:"), prompts  # Run All stops
    saved = nbformat.read(workdir / name, as_version=4)
    assert [o.ename for c in saved.cells for o in c.outputs if o.output_type == "error"] == [ename]


def test_course_notebook_runs_clean_in_jupyterlab(context, lab, workdir, tmp_path):
    start = time.monotonic()
    page = run_all_and_save(context, lab, Path(NOTEBOOK).name)
    seconds = time.monotonic() - start
    errors, prompts = page.evaluate(ERRORS_JS), page.evaluate(PROMPTS_JS)
    plot_images = page.locator(f'{NOTEBOOK_JS} .jp-OutputArea-output[data-mime-type="image/png"] img')
    plots = plot_images.count()
    if plots:
        plot_images.first.scroll_into_view_if_needed()
    page.screenshot(path=tmp_path / "lab_notebook.png")
    page.close()
    saved = nbformat.read(workdir / Path(NOTEBOOK).name, as_version=4)
    code = [c for c in saved.cells if c.cell_type == "code"]
    assert not errors, f"{NOTEBOOK} shows errors in JupyterLab: {errors}"
    assert len(prompts) == len(code) and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts), prompts
    assert plots >= 1, "no plot rendered in JupyterLab"
    assert all(c.execution_count for c in code), "the saved notebook has cells that did not run"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"], "the saved notebook has errors"
    print(f"{NOTEBOOK}: ran {len(code)} cells through JupyterLab in {seconds:.0f} s, {plots} plots")
