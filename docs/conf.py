"""Sphinx configuration of emkit's documentation site (``make docs``; offline, -W)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))  # this checkout's emkit, not an installed one
os.environ.setdefault("MPLBACKEND", "Agg")

import emkit  # noqa: E402

project = "emkit"
author = "emkit developers"
copyright = "emkit developers"
version = release = emkit.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax bundled in the site: formulas render offline
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "examples/README.txt", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.md5",
                    "auto_examples/*.codeobj.json"]
templates_path: list[str] = []

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
myst_heading_anchors = 3

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "min_reported_time": 1,
    "capture_repr": (),  # printed output only, not the repr of a last expression
}

html_theme = "pydata_sphinx_theme"
html_title = f"emkit {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path: list[str] = []
html_show_sourcelink = False


# scikit-learn's own docstrings (inherited ``score``, the ``set_*_request`` methods
# sklearn adds to estimators whose fit/score take sample_weight) cross-reference
# labels and glossary terms of scikit-learn's site, undefined here: keep their text.
_SKLEARN_XREF = re.compile(r":(?:ref|term):`([^`<]*?)\s*(?:<[^>]*>)?`")


def _plain_sklearn_xrefs(app, what, name, obj, options, lines):
    if str(getattr(obj, "__module__", "") or "").startswith("sklearn."):
        lines[:] = [_SKLEARN_XREF.sub(r"\1", line) for line in lines]


def setup(app):
    """The design page's mermaid diagram is shown as its text (no JavaScript, offline)."""
    from pygments.lexers.special import TextLexer

    app.add_lexer("mermaid", TextLexer)
    app.connect("autodoc-process-docstring", _plain_sklearn_xrefs)
