"""The course website: the executed notebooks as static HTML, by phase, with the course map as its front page.

    python -m genai_roadmap.site                  # writes _site/ (git-ignored); open _site/index.html
    python -m genai_roadmap.site --out ~/course-site

Built offline with Jupyter Book 1's stack: Sphinx, MyST-NB and sphinx-book-theme. Nothing is executed: the pages
show the outputs and plots the notebooks were committed with, the ones CI checked. The Sphinx source tree is
written into a temporary folder and mirrors the repository (`phaseN_*/NN_slug.ipynb`, `phaseN_*/README.md`), so
the links the notebooks, the README's course map and the phase guides already hold (`../phase1_foundations/
01_math_and_statistics.ipynb`) resolve to the pages as they are; the Colab badges stay.

Like every tool of the course, it never writes over what it did not make: it replaces `out` only when `out` is
empty or a previous build (it holds the marker file MARKER), and never writes inside a phase folder.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from genai_roadmap.course import BADGE, CARDS, PHASES, REPO_ROOT, course_map_markdown, repository_url

MARKER = ".genai-roadmap-site"
TITLE = "GenAI Roadmap Lab"
# Sphinx's math loads MathJax from a CDN; the site ships its own, one self-contained file (SVG output, every TeX
# extension) taken from the PyPI package sphinx-mathjax-offline, so formulas render offline too.
MATHJAX_PACKAGE, MATHJAX_FILE = "sphinx-mathjax-offline", "tex-svg-full.js"
# The Colab badge, drawn here: the site shows it without the internet (the notebooks link Colab's own SVG).
BADGE_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20" role="img" aria-label="Open in Colab">
<rect width="117" height="20" rx="3" fill="#555"/><path d="M60 0h54a3 3 0 0 1 3 3v14a3 3 0 0 1-3 3H60z" fill="#f9ab00"/>
<g fill="#fff" font-family="DejaVu Sans,Verdana,Geneva,sans-serif" font-size="11" text-anchor="middle">
<text x="30" y="14">Open in</text><text x="88" y="14" fill="#222">Colab</text></g></svg>
"""
CSS = """/* The front page has no contents sidebar: let the course map's table use its width. */
.bd-main .bd-content .bd-article-container:only-child { max-width: 100%; }
/* Tables would shrink the Colab badge to a smudge. */
img[src$="colab-badge.svg"] { max-width: none; }
"""
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "MPLBACKEND": "Agg"}


class SiteError(ValueError):
    """The site cannot be built as asked; the message says why and what to do instead."""


def phase_label(phase: str) -> str:
    """'phase1_foundations' -> 'Phase 1 · Core Foundations' (the name before the colon in PHASES)."""
    return f"Phase {phase[len('phase')]} · {PHASES[phase].split(':')[0]}"


# ---------------------------------------------------------------------------- the Sphinx source tree
def _conf() -> str:
    repo = repository_url()
    theme_options = {
        "repository_url": repo, "repository_branch": "main", "path_to_docs": "",
        "use_repository_button": True,
        "launch_buttons": {"colab_url": "https://colab.research.google.com"},  # a Colab button on each notebook
        "home_page_in_toc": True, "show_navbar_depth": 1, "show_toc_level": 2,
        "secondary_sidebar_items": {"**": ["page-toc"], "index": []},  # the course map's table gets the width
    }
    return "\n".join([
        f"project = {TITLE!r}",
        f"html_title = {TITLE!r}",
        f"author = {TITLE!r}",
        'extensions = ["myst_nb"]',
        'html_static_path = ["_static"]',
        'html_css_files = ["course.css"]',
        f'mathjax_path = "mathjax/{MATHJAX_FILE}"',
        'nb_execution_mode = "off"          # the committed outputs are the ones CI checked',
        'myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]',
        "myst_heading_anchors = 3",
        'html_theme = "sphinx_book_theme"',
        f"html_theme_options = {theme_options!r}",
        "html_show_sourcelink = False",
        "html_copy_source = False  # the notebooks themselves are one click away: the download button, GitHub",
        'exclude_patterns = ["_build", "**.ipynb_checkpoints"]',
        "",
    ])


def _front_page(root: Path) -> str:
    """The README's opening paragraph, the course map (its links resolve to the pages) and the phase toctrees."""
    intro = ""
    readme = root / "README.md"
    if readme.exists():
        body = readme.read_text().split("\n## ", 1)[0]
        intro = body.split("\n", 1)[1].strip() if body.startswith("# ") else ""
    lines = [f"# {TITLE}", "", intro, "", "## Course map", "",
             "Each card is a notebook, shown here as it was executed (outputs and plots as committed and "
             "checked by CI). The Colab badge opens it on Colab; locally, `make lab` opens it in JupyterLab.", "",
             course_map_markdown(root), ""]
    for phase in PHASES:
        lines += _toctree(phase, root)
    return "\n".join(lines)


def _toctree(phase: str, root: Path) -> list[str]:
    """One hidden toctree per phase: its guide, then its notebooks in roadmap order (the sidebar and next/prev)."""
    entries = [f"Phase guide <{phase}/README>"]
    entries += [c.notebook.removesuffix(".ipynb") for c in CARDS if c.phase == phase and (root / c.notebook).exists()]
    return ["```{toctree}", ":hidden:", f":caption: {phase_label(phase)}", "", *entries, "```", ""]


def _phase_page(phase: str, root: Path) -> str:
    """The phase guide (phaseN_*/README.md) when it exists; otherwise a generated list of the phase's cards."""
    guide = root / phase / "README.md"
    if guide.exists():
        return guide.read_text()
    lines = [f"# {phase_label(phase)}", "", PHASES[phase].split(":", 1)[-1].strip().capitalize() + ".", "",
             "| # | Notebook | What you build |", "|---|---|---|"]
    for c in (c for c in CARDS if c.phase == phase):
        name = Path(c.notebook).name
        link = f"[{c.title}]({name})" if (root / c.notebook).exists() else f"{c.title} (*coming*)"
        lines.append(f"| {c.number:02d} | {link} | {c.builds} |")
    return "\n".join(lines) + "\n"


def _for_site(text: str, depth: int) -> str:
    """A page's text as the site shows it, `depth` folders below the front page: the Colab badge drawn locally,
    links to the repository's README (the course map) pointing at the front page."""
    text = text.replace(BADGE, "../" * depth + "colab-badge.svg")
    return text.replace("](../README.md", "](../index.md") if depth == 1 else text


def _mathjax() -> Path:
    spec = importlib.util.find_spec(MATHJAX_PACKAGE)
    if spec is None or spec.origin is None:
        raise SiteError(f"the site ships MathJax from the package {MATHJAX_PACKAGE}, which is not installed: "
                        f"pip install -e '.[test]' (or pip install {MATHJAX_PACKAGE})")
    return Path(spec.origin).parent / "static" / "mathjax" / MATHJAX_FILE


def write_sources(src: Path, root: Path = REPO_ROOT) -> list[str]:
    """Write the Sphinx source tree into `src`; return the notebooks it holds (paths relative to `src`)."""
    notebooks = [c.notebook for c in CARDS if (root / c.notebook).exists()]
    if not notebooks:
        raise SiteError(f"no course notebook found under {root}: run from a checkout of the course")
    (src / "conf.py").write_text(_conf())
    (src / "_static" / "mathjax").mkdir(parents=True)
    shutil.copy2(_mathjax(), src / "_static" / "mathjax" / MATHJAX_FILE)
    (src / "_static" / "course.css").write_text(CSS)
    (src / "colab-badge.svg").write_text(BADGE_SVG)
    (src / "index.md").write_text(_for_site(_front_page(root), 0))
    for phase in PHASES:
        (src / phase).mkdir(parents=True, exist_ok=True)
        (src / phase / "README.md").write_text(_for_site(_phase_page(phase, root), 1))
    for nb in notebooks:  # copies (the sources are only read), as JSON text: nbformat would reformat them
        (src / nb).write_text(_for_site((root / nb).read_text(), 1))
    return notebooks


# ---------------------------------------------------------------------------- where the site may go
def _check_out(out: Path, root: Path) -> None:
    """Refuse an `out` the build would damage: a foreign non-empty folder, a phase folder, the repository."""
    out, root = out.resolve(), root.resolve()
    for phase in PHASES:
        if out == root / phase or (root / phase) in out.parents:
            raise SiteError(f"{out} is inside the phase folder {phase}/: the site never writes next to the "
                            "notebooks; pass --out a folder of its own, e.g. _site")
    if out == root or out in root.parents:
        raise SiteError(f"{out} holds the course itself ({root}): replacing it would delete the course; "
                        "pass --out a folder of its own, e.g. _site")
    if out.exists() and not out.is_dir():
        raise SiteError(f"{out} is a file, not a folder: pass --out a new or empty folder, or a previous site build")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise SiteError(f"{out} is not empty and is not a previous site build (it has no {MARKER} file): "
                        "the site build replaces only its own output. Pass --out a new or empty folder, "
                        "or remove this one yourself if you no longer need it")


def build_site(out: Path = REPO_ROOT / "_site", *, root: Path = REPO_ROOT, jobs: str = "auto") -> Path:
    """Build the course website into `out` (replacing a previous build there); return the front page's path.

    Raises SiteError when `out` may not be written (see _check_out) or when a notebook got no page.
    Sphinx's warnings are printed, not fatal: a notebook link to a file outside the site is worth a line, not a
    failed build. Build time: about 16 s for the 23 notebooks on 2 idle cores.
    """
    out = Path(out).expanduser()
    _check_out(out, root)
    with tempfile.TemporaryDirectory(prefix="genai-roadmap-site-") as tmp:
        src, html = Path(tmp) / "src", Path(tmp) / "html"
        src.mkdir()
        notebooks = write_sources(src, root)
        cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", jobs, "-d", str(Path(tmp) / "doctrees"),
               str(src), str(html)]
        done = subprocess.run(cmd, env={**os.environ, **OFFLINE_ENV})
        if done.returncode != 0:
            raise SiteError(f"sphinx-build failed (exit code {done.returncode}); its messages are above")
        missing = [nb for nb in notebooks if not (html / nb).with_suffix(".html").exists()]
        if missing:
            raise SiteError(f"no page was built for {', '.join(missing)}: see Sphinx's messages above")
        (html / MARKER).write_text("Built by `python -m genai_roadmap.site`; the next build replaces this folder.\n")
        _check_out(out, root)  # again: nothing may have appeared there while Sphinx ran
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(html, out)
    return out / "index.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genai_roadmap.site", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "_site",
                        help="output folder (default: _site/ in the repository; replaced only if a previous build)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        index = build_site(args.out)
    except SiteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"site built in {time.perf_counter() - start:.0f} s: open {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
