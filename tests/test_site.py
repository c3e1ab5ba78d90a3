"""genai_roadmap.site: every notebook gets a page, the course map is the front page and its links resolve, plots
render, and the build never writes over a folder it did not make. Then a learner's look: headless Chromium."""
from __future__ import annotations

import html
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

import genai_roadmap.site as site_module
from genai_roadmap import browser
from genai_roadmap.course import CARDS, PHASES, REPO_ROOT
from genai_roadmap.site import MARKER, SiteError, build_site, phase_label

EXISTING = [c for c in CARDS if (REPO_ROOT / c.notebook).exists()]
FIRST = EXISTING[0]


class _Page(HTMLParser):
    """The links, images and text of an HTML page."""

    def __init__(self, path: Path):
        super().__init__()
        self.path, self.links, self.images, self.text = path, [], [], []
        self.feed(path.read_text())

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])

    def handle_data(self, data):
        self.text.append(data)

    def local(self, urls: list[str]) -> list[Path]:
        """The files these URLs point at, for the ones that stay on the site (not http:, not #anchors)."""
        parsed = [urlparse(u) for u in urls]
        return [(self.path.parent / unquote(p.path)).resolve() for p in parsed if not p.scheme and p.path]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    build_site(out)
    return out


def page(site: Path, notebook: str) -> Path:
    return site / Path(notebook).with_suffix(".html")


def test_every_notebook_has_a_page(site):
    missing = [c.notebook for c in EXISTING if not page(site, c.notebook).exists()]
    assert not missing, f"no page for {missing}"
    assert (site / MARKER).exists()
    for phase in PHASES:
        assert (site / phase / "README.html").exists(), f"no phase page for {phase}"


def test_front_page_is_the_course_map_and_its_links_resolve(site):
    front = _Page(site / "index.html")
    text = html.unescape("".join(front.text))
    assert not [c.title for c in CARDS if c.title not in text], "a card's title is missing from the front page"
    targets = set(front.local(front.links))
    assert not [c.notebook for c in EXISTING if page(site, c.notebook).resolve() not in targets], \
        "the course map does not link every notebook's page"
    broken = sorted(str(t.relative_to(site.resolve())) for t in targets if not t.exists())
    assert not broken, f"the front page links pages that were not built: {broken}"
    assert any("colab.research.google.com/github/" in link for link in front.links), "the Colab links are gone"
    assert not [t for t in targets if t.suffix in (".ipynb", ".md")], "a link still points at a source file"


def test_notebook_pages_show_their_plots(site):
    plotted = []
    for c in EXISTING:
        nb = _Page(page(site, c.notebook))
        pngs = [p for p in nb.local(nb.images) if p.suffix == ".png"]
        assert all(p.exists() for p in pngs), f"{c.notebook}: an image of its page is missing from the build"
        plotted += [c.notebook] * bool(pngs)
    assert FIRST.notebook in plotted and len(plotted) >= len(EXISTING) // 2, f"plots rendered only in {plotted}"


def test_refuses_a_folder_it_did_not_make(tmp_path):
    mine = tmp_path / "my_notes"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(SiteError, match="not a previous site build"):
        build_site(mine)
    assert (mine / "notes.txt").read_text() == "keep me" and len(list(mine.iterdir())) == 1
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(SiteError, match="is a file"):
        build_site(tmp_path / "a_file")


@pytest.mark.parametrize("where", [f"{FIRST.phase}/site", FIRST.phase, "."])
def test_refuses_phase_folders_and_the_course_itself(where):
    with pytest.raises(SiteError, match="phase folder|holds the course"):
        build_site(REPO_ROOT / where)
    assert not (REPO_ROOT / FIRST.phase / "site").exists()


def test_replaces_a_previous_build_and_falls_back_to_generated_phase_pages(tmp_path, monkeypatch):
    root = tmp_path / "course"  # a checkout with one notebook, no README, no phase guides: a 5 s build
    # The course map's routes need every notebook; the map itself is tested above and in test_course_map.py.
    monkeypatch.setattr(site_module, "course_map_markdown", lambda root: f"[{FIRST.title}]({FIRST.notebook})\n")
    (root / FIRST.phase).mkdir(parents=True)
    shutil.copy2(REPO_ROOT / FIRST.notebook, root / FIRST.notebook)
    out = tmp_path / "site"
    out.mkdir()
    (out / MARKER).write_text("")
    (out / "stale.html").write_text("from an older build")
    index = build_site(out, root=root)
    assert index == out / "index.html" and not (out / "stale.html").exists()
    assert page(out, FIRST.notebook).exists()
    guide = html.unescape("".join(_Page(out / FIRST.phase / "README.html").text))
    assert FIRST.title in guide and "(coming)" in guide  # the generated list of the phase's cards


# ---------------------------------------------------------------------------- as a learner sees it
@pytest.fixture(scope="module")
def context():
    reason = browser.missing()
    if reason:
        (pytest.fail if browser.browser_required() else pytest.skip)(reason)
    with browser.chromium(viewport={"width": 1280, "height": 900}) as context:
        yield context


def _screenshot(context, url: str, path: Path, height: int | None = None):
    """Load a page, check nothing on it failed to load, screenshot it; return the page's DOM facts."""
    tab = context.new_page()
    failed = []
    tab.on("requestfailed", lambda r: failed.append(r.url))
    tab.goto(url, wait_until="load")
    tab.evaluate("async () => { if (window.MathJax && MathJax.startup) await MathJax.startup.promise; }")
    broken = tab.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
    facts = tab.evaluate(r"""() => ({
        nav: [...document.querySelectorAll('.bd-sidebar-primary p.caption')].map(e => e.textContent.trim()),
        math: document.querySelectorAll('mjx-container').length,
        rawMath: (document.querySelector('article').innerText.match(/\\\(|\\\[/g) || []).length,
        plots: document.querySelectorAll('div.cell_output img').length})""")
    clip = {"x": 0, "y": 0, "width": 1280, "height": height} if height else None
    tab.screenshot(path=path, full_page=True, clip=clip)
    tab.close()
    assert not failed, f"{url}: these requests failed (offline?): {failed}"
    assert not broken, f"{url}: broken images {broken}"
    return facts


def _assert_not_blank(path: Path):
    from PIL import Image

    image = Image.open(path).convert("L")
    assert image.width >= 1280 and image.height >= 900 and path.stat().st_size > 50_000, f"{path}: too small"
    histogram = image.resize((320, image.height // 4)).histogram()
    assert sum(1 for n in histogram if n) > 32, f"{path}: looks blank (few shades of grey)"


def test_screenshots_front_page_and_a_notebook(context, site, tmp_path):  # context first: skip before building
    front = _screenshot(context, (site / "index.html").as_uri(), tmp_path / "front.png")
    assert front["nav"] == [phase_label(p) for p in PHASES], f"the sidebar's phases: {front['nav']}"
    notebook = _screenshot(context, page(site, FIRST.notebook).as_uri(), tmp_path / "notebook.png", height=4000)
    assert notebook["plots"] >= 1, "the notebook page shows no plot"
    assert notebook["math"] > 0 and notebook["rawMath"] == 0, f"math not typeset: {notebook}"
    for png in ("front.png", "notebook.png"):
        _assert_not_blank(tmp_path / png)
