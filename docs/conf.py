"""Sphinx configuration of adareg's documentation site.

Build it with warnings as errors, nitpicky (a link that resolves nowhere is a warning),
as CI does through tests/test_docs.py::

    python -m sphinx -W -n --keep-going -b html docs docs/_build/html

Pages are Markdown (MyST) or reStructuredText; the API reference is generated
from the numpy-style docstrings by autodoc and napoleon, and the maths is
rendered by MathJax (loaded by the reader's browser; the build needs no network).
"""

from __future__ import annotations

import contextlib
import dataclasses
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

# -- Cross-references (the build is nitpicky: a link that resolves nowhere is a warning) --
# No intersphinx (the build needs no network), so names of NumPy, Dask and the standard library,
# which signatures and docstrings link to, have no target here: ignore exactly those, by module.
# The patterns are anchored at the module's name, so no adareg name is ever ignored, except the
# TypeVars (typing.TypeVar, not documented) of the generic caches and thread helpers.
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|dask)\..+"),
    (r"py:.*", r"(abc|collections\.abc|functools|os|pathlib|types|typing|warnings)\..+"),
    (r"py:mod", r"zipfile"),
    (r"py:class", r"adareg\.(caches|threads)\.[AT]"),
]

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


# -- Signatures and bases autodoc would render with dead links ----------------

def public_bases(app: Any, name: str, obj: type, options: Any, bases: list[type]) -> None:
    """Show a private base class (``_MRIOperator``, documented nowhere) as its own bases."""
    i = 0
    while i < len(bases):
        if isinstance(bases[i], type) and bases[i].__name__.startswith("_"):
            bases[i:i + 1] = [base for base in bases[i].__bases__ if base not in bases]
        else:
            i += 1


def factory_defaults(app: Any, what: str, name: str, obj: Any, options: Any, signature: str | None,
                     return_annotation: str | None) -> tuple[str | None, str | None]:
    """Show a dataclass field's default factory as a call (``dict()``) instead of Python's ``<factory>``,
    which is no expression: Sphinx would split the signature at each comma (a link to ``dict[str``)."""
    if signature and dataclasses.is_dataclass(obj):
        for field in dataclasses.fields(obj):
            if field.init and field.default_factory is not dataclasses.MISSING:
                factory = getattr(field.default_factory, "__name__", "")
                signature = signature.replace("<factory>", f"{factory}()" if factory.isidentifier() else "...", 1)
    return signature, return_annotation


def setup(app: Any) -> dict[str, bool]:
    app.add_directive("adareg-help", CommandLineHelp)
    app.connect("autodoc-process-bases", public_bases)
    app.connect("autodoc-process-signature", factory_defaults)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
