"""The documentation: the site builds without warnings, and every example in it runs.

* ``test_site_builds``: ``python -m sphinx -W -n --keep-going -b html docs <tmp>``, the
  build CI requires (warnings are errors; nitpicky, so a cross-reference that resolves
  nowhere is one).  Needs the ``docs`` extra; skipped with
  the reason where Sphinx, MyST or the theme is missing, except in CI (``CI=true``),
  where a missing tool is a failure, so that the check cannot silently vanish.
* ``test_docstring_examples``: the ``>>>`` examples in the docstrings of every
  module of :mod:`adareg`, as doctests.
* ``test_page_examples``: the fenced ``pycon`` blocks of each page under ``docs/``,
  run in order as one doctest per page (one namespace per page); ``python`` blocks
  are compiled, not run (they show full-size code that needs data of its own).
* ``test_figures_are_small``: committed images stay below 300 KB each.

Doctests compare printed output with ``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``; every
example draws its noise from a seeded generator, so the output is deterministic.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import adareg

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.relative_to(DOCS).parts)

#: Importable modules the site build needs (the ``docs`` extra).
DOCS_TOOLS = {"sphinx": "sphinx", "myst_parser": "myst-parser", "furo": "furo",
              "sphinx-mathjax-offline": "sphinx-mathjax-offline"}

#: Modules the examples of a page import beyond adareg's own dependencies.
PAGE_NEEDS = {
    "getting-started.md": ("skimage",),
    "tutorials/denoising.md": ("skimage",),
    "tutorials/ct.md": ("astra",),
    "tutorials/mri.md": ("skimage", "sigpy"),
}

OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: A fenced block: opening fence (3+ backticks) with its info string, body, the same fence.
FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.MULTILINE | re.DOTALL)


def _missing(modules) -> list[str]:
    return [name for name in modules if importlib.util.find_spec(name) is None]


def _run(test: doctest.DocTest) -> None:
    """Run one doctest; fail with the doctest report if any example fails."""
    lines: list[str] = []
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    result = runner.run(test, out=lines.append)
    if result.failed:
        pytest.fail(f"{result.failed} of {result.attempted} examples failed in {test.name}:\n" + "".join(lines),
                    pytrace=False)


# ---------------------------------------------------------------------------- the site


def test_site_builds(tmp_path: Path) -> None:
    missing = [DOCS_TOOLS[name] for name in _missing(DOCS_TOOLS)]
    if missing:
        message = f"the documentation tools are not installed ({', '.join(missing)}): pip install -e '.[docs]'"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    command = [sys.executable, "-m", "sphinx", "-W", "-n", "--keep-going", "-q", "-b", "html",
               "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"the docs build failed or warned:\n{done.stdout}\n{done.stderr}"
    for page in ("index", "getting-started", "method", "tutorials/ct", "operators", "training", "cli",
                 "results", "roadmap", "api/operators"):
        assert (tmp_path / "html" / f"{page}.html").is_file(), f"{page}.html was not built"
    # offline: MathJax comes with the site, no page loads a script from elsewhere
    html = tmp_path / "html"
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    remote = [p.name for p in html.rglob("*.html") if re.search(r"<script[^>]+src=\"(https?:)?//", p.read_text())]
    assert not remote, f"pages that load scripts from the network: {remote}"
    # the Set12 table is a table, not raw pipes
    results = (html / "results.html").read_text()
    assert "<table" in results and "| method |" not in results


# ---------------------------------------------------------------------------- docstrings


def _public_modules() -> list[str]:
    """Every module of the adareg package (not the example scripts it may ship as adareg.examples)."""
    names = ["adareg"]
    for info in pkgutil.walk_packages(adareg.__path__, prefix="adareg."):
        if not info.name.startswith("adareg.examples"):
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("module_name", _public_modules())
def test_docstring_examples(module_name: str) -> None:
    module = importlib.import_module(module_name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, module_name)
    for test in sorted(tests, key=lambda t: t.name):
        _run(test)


# ---------------------------------------------------------------------------- pages


def _page_id(page: Path) -> str:
    return page.relative_to(DOCS).as_posix()


def _blocks(page: Path, languages: tuple[str, ...]):
    """``(line number of the first body line, body)`` of each fenced block in one of ``languages``."""
    text = page.read_text(encoding="utf-8")
    for match in FENCE.finditer(text):
        if match["info"].strip() in languages:
            yield text.count("\n", 0, match.start("body")), match["body"]


def test_pages_found() -> None:
    names = {_page_id(p) for p in PAGES}
    assert {"index.md", "getting-started.md", "method.md", "operators.md", "training.md"} <= names


def test_readme_python_blocks_compile() -> None:
    """The README is no page of the site (it includes parts of it), so its blocks were checked by nothing."""
    readme = ROOT / "README.md"
    blocks = list(_blocks(readme, ("python", "py")))
    assert blocks
    for first_line, body in blocks:
        try:
            compile(body, f"{readme}:{first_line + 1}", "exec")
        except SyntaxError as err:
            pytest.fail(f"python block at {readme}:{first_line + 1} does not compile: {err}", pytrace=False)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_page_examples(page: Path) -> None:
    parser = doctest.DocTestParser()
    examples: list[doctest.Example] = []
    for first_line, body in _blocks(page, ("pycon",)):
        for example in parser.get_examples(body, name=str(page)):
            example.lineno += first_line
            examples.append(example)
    for first_line, body in _blocks(page, ("python", "py")):
        try:
            compile(body, f"{page}:{first_line + 1}", "exec")
        except SyntaxError as err:
            pytest.fail(f"python block at {page}:{first_line + 1} does not compile: {err}", pytrace=False)
    if not examples:
        return
    missing = _missing(PAGE_NEEDS.get(_page_id(page), ()))
    if missing:
        pytest.skip(f"the examples of {_page_id(page)} need {', '.join(missing)}")
    globs = {"__name__": f"docs.{_page_id(page)}"}
    _run(doctest.DocTest(examples, globs, _page_id(page), str(page), 0, None))


# ---------------------------------------------------------------------------- figures


def test_figures_are_small() -> None:
    images = [p for p in DOCS.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".svg", ".gif"}
              and "_build" not in p.relative_to(DOCS).parts]
    assert images, "no figures under docs/"
    large = {str(p.relative_to(ROOT)): p.stat().st_size for p in images if p.stat().st_size > 300_000}
    assert not large, f"figures over 300 KB (regenerate with docs/make_figures.py): {large}"
