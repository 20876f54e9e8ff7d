"""Every notebook in a real browser, in JupyterLab started as `make lab` starts it.

JupyterLab runs on a copy of the repository (tests/repo_copy.py) so that nothing the browser does
(an autosave, a checkpoint, a kernel writing outputs/) can touch the committed notebooks. It is
started by scripts/jupyter_lab.py's lab_command(), the command `make lab` runs, with only a free
loopback port, a token and --no-browser added. Debian's chromium, driven by Playwright, opens
each notebook, checks that every picture its markdown links has loaded, runs all cells from the
Run menu, waits for the kernel to go idle, and checks that every code cell ran, that no cell
shows an error or stderr output that is not ours (repo_copy.foreign_stderr: MXNet's log, a
library's warning), that figures appeared, and that JupyterLab shows no pop-up about Jupyter's
news. Then it uses the interactive panels (issue 35): in notebook 2 it presses the button
"Write" and waits for the text under it to change, in notebook 3 it moves the first slider (the
seed) and waits for the picture under it to change. A screenshot of each notebook goes to
outputs/browser/.

The notebooks run in their DEFAULT mode, as a reader's Run All does: GENMODELS_SMOKE (which
conftest.py sets for nbval) is removed from the server's environment, so they load the shipped
weights and sample. Notebooks 1 and 4 are only opened (OPENED_ONLY): their Run All without data
is tests/test_fresh_clone.py's, under papermill, so that each runs once in the suite. Data: none,
as on a reader's fresh clone: GENMODELS_DATA_DIR is not passed on (the cells that need the text or
the faces run under nbval), the copy's data/ holds only what git tracks, and downloads go to a
closed loopback port, so the test never fetches the data sets.
MPLBACKEND=Agg, which conftest.py sets, is kept: as in some hosted Jupyter set-ups, a notebook
without `%matplotlib inline` then shows no figure, and this test fails.

Without /usr/bin/chromium the tests are skipped, saying how to install it; with CI=true they fail.
"""
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

import repo_copy

ROOT = repo_copy.ROOT
sys.path.insert(0, str(ROOT / "scripts"))
import jupyter_lab  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = ROOT / "outputs" / "browser"
NOTEBOOKS = sorted(path.name for path in (ROOT / "notebooks").glob("[0-9]*.ipynb"))
SERVER_START_SECONDS = 300  # 39 s on an idle 2-core machine; far more when it is loaded
# Opened and their pictures checked, without Run All: tests/test_fresh_clone.py runs them without data.
OPENED_ONLY = {name for name in NOTEBOOKS if name.startswith(("01", "04"))}
RUN_ALL_SECONDS = 300  # a notebook's default mode takes seconds; this is for a loaded machine
# Settings of the test's own JupyterLab user folder, not of a reader's: every cell attached to the
# page at once (JupyterLab 4 otherwise attaches only the cells in view, and the checks below look
# at all of them) and no autosave. The news pop-up is off by make lab's own settings (jupyter_lab.py).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}
# Notebooks whose last cells hold an interactive panel (issue 35), and what the test does with it.
PANELS = {"02": "press the button 'Write'", "03": "move the first slider"}


def require_chromium():
    reason = None
    if not CHROMIUM.exists():
        reason = (f"{CHROMIUM} not found: install Debian's chromium (sudo apt-get install chromium) "
                  "to run the browser test")
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "playwright is not installed: pip install -r requirements.txt"
    if reason and os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the browser test: {reason}")
    if reason:
        pytest.skip(reason)


def linked_pictures(notebook_path):
    """Relative URLs of the pictures a notebook's markdown cells show (markdown or <img>)."""
    pattern = re.compile(r'!\[[^\]]*\]\(\s*<?([^)\s>]+)|<img[^>]*\bsrc=["\']([^"\']+)')
    pictures = []
    for cell in json.loads(Path(notebook_path).read_text())["cells"]:
        if cell["cell_type"] == "markdown":
            for markdown, html in pattern.findall("".join(cell["source"])):
                url = markdown or html
                if not re.match(r"^(https?:|data:|attachment:)", url):
                    pictures.append(url)
    return pictures


def descendants(pid):
    """Process ids whose parent chain leads to `pid` (Linux /proc), `pid` excluded."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Lab:
    """A JupyterLab server on a copy of the repository, started by lab_command()."""

    def __init__(self, root, settings_folder, env):
        self.root = root
        self.port = repo_copy.closed_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        command = jupyter_lab.lab_command(root=root, extra_options=[
            f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}", "--no-browser"])
        self.log_path = settings_folder.parent / "jupyterlab.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(command, env=env, cwd=root, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self.seen_processes = set()
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                self.get("/api/status")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not answer within {SERVER_START_SECONDS} s:\n"
                                       f"{self.log_text()}")
                time.sleep(0.3)

    def log_text(self):
        self.log.flush()
        return self.log_path.read_text()[-4000:]

    def url(self, path):
        return f"{self.base}{path}{'&' if '?' in path else '?'}token={self.token}"

    def get(self, path, method="GET"):
        request = urllib.request.Request(self.url(path), method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read(), response.geturl()

    def note_processes(self):
        """Remember the kernels (and anything they started) so that shutdown can be checked."""
        self.seen_processes.update(descendants(self.process.pid))

    def shut_down(self):
        """Shut the server down as a reader's Ctrl-C would; return the processes it left behind."""
        self.note_processes()
        try:
            self.get("/api/shutdown", method="POST")
        except (urllib.error.URLError, ConnectionError):
            pass
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(alive(pid) for pid in self.seen_processes):
            time.sleep(0.2)
        left = sorted(pid for pid in self.seen_processes if alive(pid))
        for pid in left:  # leave the machine clean even when the check fails
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()
        return left


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_chromium()
    workspace = tmp_path_factory.mktemp("browser")
    root = repo_copy.copy_clone(workspace / "repository")
    if root is None:
        pytest.skip("not a git checkout: the browser test copies the files git lists")
    settings = workspace / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    env = repo_copy.reader_environment(**repo_copy.offline_urls(repo_copy.closed_port()))
    env.update(JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(workspace / "lab-workspaces"),
               JUPYTER_CONFIG_DIR=str(workspace / "jupyter-config"), JUPYTER_RUNTIME_DIR=str(workspace / "runtime"))
    server = Lab(root, settings, env)
    yield server
    left = server.shut_down()
    assert not left, f"JupyterLab's shutdown left processes running: {left}"


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1600})
        yield context
        context.close()


def test_make_lab_serves_the_repository_and_opens_on_the_notebooks():
    command = jupyter_lab.lab_command()
    assert f"--ServerApp.root_dir={ROOT}" in command
    assert "--LabApp.default_url=/lab/tree/notebooks" in command
    makefile = (ROOT / "Makefile").read_text()
    assert "scripts/jupyter_lab.py" in makefile.split("\nlab:", 1)[1].split("\n\n", 1)[0]


def test_the_root_url_opens_the_notebooks_folder(lab):
    status, _, _, final_url = lab.get("/")
    assert status == 200 and urllib.parse.urlparse(final_url).path == "/lab/tree/notebooks"


def test_every_picture_a_notebook_links_is_served(lab):
    served, missing = [], []
    for name in NOTEBOOKS:
        for url in linked_pictures(ROOT / "notebooks" / name):
            path = os.path.normpath((Path("notebooks") / url).as_posix())
            assert not path.startswith(".."), f"{name} links {url}, outside the repository"
            try:
                status, content_type, body, _ = lab.get(f"/files/{urllib.parse.quote(path)}")
            except urllib.error.HTTPError as error:
                status, content_type, body = error.code, "", b""
            if (status, content_type.split(";")[0]) == (200, "image/png") and body:
                served.append(path)
            else:
                missing.append(f"{name} links {url}: the server answers {status} {content_type} for /files/{path}")
    assert missing == [], "\n".join(missing)
    assert len(served) >= 7, served  # at least the diagrams of notebooks 1-3


# The notebook on show; the notebooks opened earlier in the page stay in it, hidden.
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def evaluate(page, script):
    return page.evaluate(script.replace("{PANEL}", PANEL))


def wait_for(page, script, seconds, what):
    try:
        page.wait_for_function(script.replace("{PANEL}", PANEL), timeout=seconds * 1000, polling=250)
    except Exception as error:  # Playwright's TimeoutError: say which wait
        raise AssertionError(f"{what} did not happen within {seconds} s") from error


def run_in_browser(lab, browser, relative_path, screenshot_stem, use_panel=None):
    """Open a notebook of the served copy, Run All from the menu, use its panel, save it (in the
    copy), and report.

    Returns a dict: the linked pictures that did not load, the code cells Run All did not
    execute, the error outputs (read from the notebook saved by the UI, which also shows whether
    they came from an exception rather than a warning on stderr), the stderr lines that are not
    ours, the widths of the figures the output areas show, the pop-ups shown, and, with
    `use_panel` (a function of the page), what it returned.
    """
    saved_path = lab.root / relative_path
    before = saved_path.stat().st_mtime_ns
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page()
    try:
        report = run_all_and_save(lab, page, relative_path, screenshot_stem, use_panel)
    except BaseException:
        page.screenshot(path=str(SCREENSHOTS / f"{screenshot_stem}-failed.png"))
        raise
    finally:  # a kernel still running (a timeout, say) must not slow down the next notebook
        for session in json.loads(lab.get("/api/sessions")[2]):
            lab.get(f"/api/sessions/{session['id']}", method="DELETE")
        page.close()
    deadline = time.monotonic() + 30
    while saved_path.stat().st_mtime_ns == before:  # what is read below must be this run's notebook
        assert time.monotonic() < deadline, f"{relative_path}: the UI did not save the copy"
        time.sleep(0.2)
    saved = json.loads(saved_path.read_text())
    code_cells = [cell for cell in saved["cells"] if cell["cell_type"] == "code"]
    return {
        **report,
        "not run": [f"code cell {index}: {''.join(cell['source'])[:60]!r}" for index, cell in enumerate(code_cells)
                    if cell.get("execution_count") is None],
        "errors": [f"code cell {index}: {output['ename']}: {output['evalue']}"
                   for index, cell in enumerate(code_cells) for output in cell["outputs"]
                   if output["output_type"] == "error"],
        "stderr": repo_copy.foreign_stderr(saved["cells"]),
    }


def open_and_check_pictures(lab, page, relative_path, screenshot_stem):
    """Open a notebook with a kernel, wait for its linked pictures; the ones that did not load."""
    # ?reset: a workspace of its own, without the tabs of the notebooks opened before
    page.goto(lab.url(f"/lab/tree/{relative_path}?reset"))
    wait_for(page, "document.querySelector('{PANEL} .jp-Notebook-ExecutionIndicator')"
                   "?.getAttribute('data-status') === 'idle'", 120, f"{relative_path}: the kernel starting")
    pictures = linked_pictures(lab.root / relative_path)
    wait_for(page, f"""(() => {{
        const images = [...document.querySelectorAll('{PANEL} .jp-MarkdownOutput img')];
        return images.length >= {len(pictures)} && images.every(image => image.complete);
    }})()""", 30, f"{relative_path}: {len(pictures)} pictures in the markdown loading")
    broken = evaluate(page, """[...document.querySelectorAll('{PANEL} .jp-MarkdownOutput img')]
        .filter(image => image.naturalWidth === 0).map(image => new URL(image.src).pathname)""")
    evaluate(page, "document.querySelector('{PANEL} .jp-MarkdownOutput img')?.scrollIntoView()")
    page.screenshot(path=str(SCREENSHOTS / f"{screenshot_stem}-opened.png"))
    return broken


def run_all_and_save(lab, page, relative_path, screenshot_stem, use_panel=None):
    """The browser's part of run_in_browser: the pictures, Run All, the figures, the panel, the
    screenshots, Save."""
    broken = open_and_check_pictures(lab, page, relative_path, screenshot_stem)
    # Before Run All, the prompts show no '*' and the kernel is idle, exactly as after it: an
    # observer notes the first queued cell ('*'), however briefly it shows, so the wait below
    # cannot end before the run has begun.
    evaluate(page, """(() => {
        window.runAllStarted = false;
        const panel = document.querySelector('{PANEL}');
        new MutationObserver(() => {
            if ([...panel.querySelectorAll('.jp-InputPrompt')].some(prompt => prompt.textContent.includes('*')))
                window.runAllStarted = true;
        }).observe(panel, {subtree: true, childList: true, characterData: true});
    })()""")
    started = time.perf_counter()
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    lab.note_processes()
    wait_for(page, """(() => {
        const prompts = [...document.querySelectorAll('{PANEL} .jp-CodeCell .jp-InputPrompt')];
        const indicator = document.querySelector('{PANEL} .jp-Notebook-ExecutionIndicator');
        return window.runAllStarted && prompts.every(prompt => !prompt.textContent.includes('*'))
            && indicator.getAttribute('data-status') === 'idle';
    })()""", RUN_ALL_SECONDS, f"{relative_path}: Run All finishing")
    lab.note_processes()
    print(f"{relative_path}: Run All took {time.perf_counter() - started:.0f} s in the browser")
    figures = evaluate(page, """[...document.querySelectorAll('{PANEL} .jp-OutputArea-output img')]
        .map(image => image.naturalWidth)""")
    evaluate(page, "document.querySelector('{PANEL} .jp-OutputArea-output img')?.scrollIntoView()")
    page.screenshot(path=str(SCREENSHOTS / f"{screenshot_stem}-ran.png"))
    panel = use_panel(page) if use_panel else None
    if use_panel:
        page.screenshot(path=str(SCREENSHOTS / f"{screenshot_stem}-panel.png"))
    # JupyterLab's notifications (its toasts) about Jupyter's news or updates: make lab turns them off
    pop_ups = evaluate(page, "[...document.querySelectorAll('.Toastify__toast')].map(toast => toast.innerText)"
                             ".filter(text => /news|update/i.test(text))")

    # Save from the UI: this server serves a copy, so the committed notebook is never written.
    page.keyboard.press("Control+s")
    wait_for(page, "!document.querySelector('{PANEL}')?.classList.contains('jp-mod-dirty') "
                   "&& !document.querySelector('.lm-TabBar-tab.jp-mod-current.jp-mod-dirty')", 30,
             f"{relative_path}: saving the copy")
    report = {"broken pictures": broken, "figures": figures, "pop-ups": pop_ups}
    return {**report, "panel": panel} if use_panel else report


# ---------------------------------------------------------------- the panels (ipywidgets)

def has_panel(notebook_path):
    """True when a code cell of the notebook builds ipywidgets (a helpers.*_panel call, say)."""
    return any(cell["cell_type"] == "code" and re.search(r"ipywidgets|_panel\(", "".join(cell["source"]))
               for cell in json.loads(Path(notebook_path).read_text())["cells"])


def widget_area(page, widget_selector):
    """The output area (one cell's output) that holds a widget matching `widget_selector`."""
    return page.locator(f"{PANEL} .jp-OutputArea-output").filter(has=page.locator(widget_selector)).first


def wait_for_change(read, before, seconds, what):
    deadline = time.monotonic() + seconds
    while (now := read()) == before:
        assert time.monotonic() < deadline, f"{what} did not change within {seconds} s"
        time.sleep(0.25)
    return now


def press_write(page):
    """Press the panel's button "Write"; the text of the panel (outputs, text areas) before and after."""
    button = page.locator(f"{PANEL} button.widget-button").filter(has_text=re.compile(r"^\s*Write\s*$")).first
    area = widget_area(page, "button.widget-button")

    def text():
        return area.evaluate("area => area.innerText + [...area.querySelectorAll('textarea')]"
                             ".map(box => box.value).join('\\n')")
    before = text()
    button.scroll_into_view_if_needed()
    button.click()
    return before, wait_for_change(text, before, 60, "the text under the button 'Write'")


def move_first_slider(page):
    """Move the panel's first slider one step (the keyboard, as a reader may); the picture under it
    (its URL: ipywidgets makes a new one for each new image) before and after."""
    area = widget_area(page, ".widget-slider")
    picture = area.locator("img").first

    def source():
        return picture.get_attribute("src")
    before = source()
    handle = area.locator(".widget-slider .noUi-handle").first
    handle.scroll_into_view_if_needed()
    handle.focus()
    page.keyboard.press("ArrowRight")
    return before, wait_for_change(source, before, 60, "the picture under the first slider")


PANEL_USE = {"02": press_write, "03": move_first_slider}
PANEL_RESULTS = {}  # notebook name: (before, after), filled by the Run All test


@pytest.mark.parametrize("name", [name for name in NOTEBOOKS if name not in OPENED_ONLY])
def test_notebook_renders_and_runs_in_jupyterlab(lab, browser, name):
    use = PANEL_USE.get(name[:2]) if has_panel(lab.root / "notebooks" / name) else None
    report = run_in_browser(lab, browser, f"notebooks/{name}", Path(name).stem, use)
    assert report["broken pictures"] == [], f"{name}: pictures that did not load in JupyterLab: {report['broken pictures']}"
    assert report["errors"] == [], f"{name} shows errors after Run All:\n" + "\n".join(report["errors"])
    assert report["not run"] == [], f"{name}: cells Run All did not reach:\n" + "\n".join(report["not run"])
    assert report["stderr"] == [], f"{name} shows stderr output that is not ours:\n" + "\n".join(report["stderr"])
    assert report["pop-ups"] == [], f"{name}: JupyterLab shows pop-ups: {report['pop-ups']}"
    assert report["figures"] and all(width > 0 for width in report["figures"]), \
        f"{name}: the widths of the figures in its outputs: {report['figures']} (none, or some did not load)"
    if use:
        PANEL_RESULTS[name] = report["panel"]


@pytest.mark.parametrize("name", [name for name in NOTEBOOKS if name[:2] in PANELS])
def test_the_panel_answers_in_jupyterlab(lab, name):
    """After Run All (the test above), the panel's button or slider changed what it shows."""
    if not has_panel(lab.root / "notebooks" / name):
        pytest.skip(f"{name} has no panel cell yet (issue 35): nothing to {PANELS[name[:2]]}")
    assert name in PANEL_RESULTS, f"{name}: Run All in the browser failed before its panel was used (see above)"
    before, after = PANEL_RESULTS[name]
    assert after != before


@pytest.mark.parametrize("name", sorted(OPENED_ONLY))
def test_notebook_renders_in_jupyterlab(lab, browser, name):
    """Its pictures load; its cells run under nbval (smoke mode), and its committed outputs are a full run."""
    page = browser.new_page()
    try:
        broken = open_and_check_pictures(lab, page, f"notebooks/{name}", Path(name).stem)
    finally:
        for session in json.loads(lab.get("/api/sessions")[2]):
            lab.get(f"/api/sessions/{session['id']}", method="DELETE")
        page.close()
    assert broken == [], f"{name}: pictures that did not load in JupyterLab: {broken}"


def test_the_checks_see_a_broken_picture_an_error_and_the_cells_it_stopped(lab, browser):
    """The same checks on a notebook made to fail them, so a passing notebook means something."""
    import nbformat

    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                 "language": "python"}})
    notebook.cells = [nbformat.v4.new_markdown_cell("![gone](../images/no_such_picture.png)"),
                      nbformat.v4.new_code_cell("import sys; print('runs'); print('a warning', file=sys.stderr)"),
                      nbformat.v4.new_code_cell("raise ValueError('made to fail')"),
                      nbformat.v4.new_code_cell("print('never reached')")]
    nbformat.write(notebook, lab.root / "notebooks" / "made_to_fail.ipynb")
    report = run_in_browser(lab, browser, "notebooks/made_to_fail.ipynb", "made_to_fail")
    assert report == {"broken pictures": ["/files/images/no_such_picture.png"],
                      "not run": ["code cell 2: \"print('never reached')\""],
                      "errors": ["code cell 1: ValueError: made to fail"],
                      "stderr": ["code cell 0: 'a warning'"],
                      "figures": [], "pop-ups": []}


# A panel of the standard widgets the notebooks' panels use: a button "Write" that prints a new
# text under it, a slider whose value draws the picture under it.
PANEL_CELL = """
import ipywidgets as widgets, numpy as np, cv2
from IPython.display import display
write, text = widgets.Button(description="Write"), widgets.Output()
seed = widgets.IntSlider(value=0, min=0, max=9, description="seed", continuous_update=False)
picture = widgets.Image(format="png")
def on_write(_):
    with text:
        text.clear_output()
        print(np.random.randint(1 << 30))
def draw(_=None):
    picture.value = cv2.imencode(".png", np.full((8, 8, 3), 25 * seed.value, np.uint8))[1].tobytes()
write.on_click(on_write)
seed.observe(draw, names="value")
draw()
display(widgets.VBox([write, text]), widgets.VBox([seed, picture]))
"""


def test_the_panel_checks_see_a_button_and_a_slider_answer(lab, browser):
    """press_write and move_first_slider on standard ipywidgets: they see the change they wait for."""
    import nbformat

    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                 "language": "python"}})
    notebook.cells = [nbformat.v4.new_code_cell(PANEL_CELL)]
    nbformat.write(notebook, lab.root / "notebooks" / "a_panel.ipynb")
    report = run_in_browser(lab, browser, "notebooks/a_panel.ipynb", "a_panel",
                            lambda page: (press_write(page), move_first_slider(page)))
    assert report["errors"] == [] and report["stderr"] == [], report
    (text_before, text_after), (picture_before, picture_after) = report["panel"]
    assert text_after != text_before and picture_after != picture_before
