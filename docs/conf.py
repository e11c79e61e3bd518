"""Sphinx configuration of adareg's documentation site.

Build it with warnings as errors (what CI does, through tests/test_docs.py)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Pages are Markdown (MyST) or reStructuredText; the API reference is generated
from the numpy-style docstrings by autodoc and napoleon, and the maths is
rendered by MathJax (loaded by the reader's browser; the build needs no network).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

# Document the checkout this file belongs to, installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import adareg

project = "adareg"
author = "adareg developers"
copyright = "adareg developers"
version = release = adareg.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax served from _static, not a CDN: the site renders offline
    "sphinx.ext.viewcode",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "README.md", "figures/*.md"]
templates_path: list[str] = []

# -- MyST (Markdown pages) ---------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# -- autodoc + napoleon (numpy-style docstrings) -----------------------------
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_preserve_defaults = True
add_module_names = False

# -- HTML ----------------------------------------------------------------------
html_theme = "furo"
html_title = f"adareg {release}"
html_static_path: list[str] = []


# -- The command line's help, generated from its argparse parser -------------

class CommandLineHelp(SphinxDirective):
    """``{adareg-help} [COMMAND]``: the ``--help`` text of ``adareg [COMMAND]`` as a literal block.

    Taken from :func:`adareg.cli.parser` at build time, so the page always shows
    the options of the code it documents (formatted for 80 columns).
    """

    optional_arguments = 1

    def run(self) -> list[nodes.Node]:
        from adareg import cli

        out = io.StringIO()
        columns = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "80"
        try:
            with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
                cli.parser().parse_args([*self.arguments, "--help"])
        finally:
            if columns is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = columns
        text = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue()).rstrip()  # no colours (Python >= 3.14)
        if not text:
            raise self.error(f"adareg {' '.join(self.arguments)} --help printed nothing")
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


def setup(app: Any) -> dict[str, bool]:
    app.add_directive("adareg-help", CommandLineHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
