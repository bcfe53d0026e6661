"""Every code block of README.md and of the user guide runs.

README.md: its ```python blocks run in order in one namespace (a block may use
names an earlier one defined); :data:`README_SETUP` defines the few names the
README uses as placeholders for the reader's own data. A block preceded by
``<!-- doc-test: skip: REASON -->`` is not run; those allowed are listed in
:data:`README_SKIPPED` (a new skip must be added there, with its reason).

docs/**/*.rst: each page's ``.. code-block:: python`` blocks run in order in one
namespace per page; ``.. emkit-doc-test: skip ...`` before a block skips it
(allowed ones in :data:`DOCS_SKIPPED`).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = re.compile(r"<!--\s*doc-test:\s*skip:\s*(.*?)\s*-->\s*$")

# Blocks not run here, by their first line, and why.
README_SKIPPED = {
    "from emkit import select_model": "run by test_plot_and_selection (selection shared)",
    "from emkit import GaussianMixture, sources": "big files and a Dask cluster",
}
DOCS_SKIPPED = {"user_guide/scaling.rst": 1}  # the Dask block (a Zarr store)


def _readme_setup() -> dict:
    """The reader's data the README refers to without making it."""
    from emkit.datasets import load_faithful

    rng = np.random.default_rng(0)
    X_with_nan = load_faithful()
    X_with_nan[rng.random(X_with_nan.shape) < 0.1] = np.nan
    n = 200
    X_mixed = np.column_stack([
        np.r_[rng.normal(0, 1, n), rng.normal(3, 1, n)],
        np.r_[rng.poisson(2, n), rng.poisson(6, n)],
        np.r_[rng.choice(3, n, p=[.5, .3, .2]), rng.choice(3, n, p=[.2, .3, .5])],
    ]).astype(float)
    batches = np.array_split(load_faithful(), 4)
    return {"X_with_nan": X_with_nan, "X_mixed": X_mixed, "batches": batches}


def readme_blocks(text: str) -> tuple[list[tuple[int, str]], list[tuple[str, str]]]:
    """``([(line, code)], [(first line, reason)])``: blocks to run, and those skipped."""
    run, skipped = [], []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```python":
            end = lines.index("```", i + 1)
            code = "\n".join(lines[i + 1:end])
            marker = SKIP.match(lines[i - 1].strip()) if i else None
            if marker:
                skipped.append((lines[i + 1].strip(), marker.group(1)))
            else:
                run.append((i + 2, code))
            i = end
        i += 1
    return run, skipped


def rst_blocks(text: str) -> tuple[list[tuple[int, str]], int]:
    """``([(line, code)], skipped)`` for the ``.. code-block:: python`` blocks of a page."""
    lines = text.splitlines()
    run, skipped, previous = [], 0, ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == ".. code-block:: python":
            body, j = [], i + 1
            while j < len(lines) and (not lines[j].strip() or lines[j].startswith("    ")):
                body.append(lines[j][4:])
                j += 1
            if previous.startswith(".. emkit-doc-test: skip"):
                skipped += 1
            else:
                run.append((i + 1, "\n".join(body)))
            i = j
            continue
        if line.strip():
            previous = line.strip()
        i += 1
    return run, skipped


def _run(blocks, namespace: dict, name: str) -> None:
    for line, code in blocks:
        # Line numbers in tracebacks point into the document.
        exec(compile("\n" * (line - 1) + code, name, "exec"), namespace)  # our own docs


def test_readme_blocks_run(tmp_path, monkeypatch):
    blocks, skipped = readme_blocks((ROOT / "README.md").read_text())
    assert {first for first, _ in skipped} == set(README_SKIPPED), (
        f"README blocks skipped: {skipped}; allowed: {README_SKIPPED}")
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)  # blocks write files (faithful.npz)
    namespace = _readme_setup()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes of the short examples
        _run(blocks, namespace, str(ROOT / "README.md"))
    # What the README says the first blocks give.
    assert namespace["gm2"].n_components == 2
    assert [round(float(c.p), 2) for c in namespace["coins"].components_] == [0.8, 0.52]
    assert not np.isnan(namespace["filled"]).any()


@pytest.mark.parametrize("page", sorted(
    str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.rst")
    if "_build" not in p.parts and "generated" not in p.parts
    and "auto_examples" not in p.parts))
def test_docs_page_blocks_run(page, tmp_path, monkeypatch):
    blocks, skipped = rst_blocks((ROOT / "docs" / page).read_text())
    assert skipped == DOCS_SKIPPED.get(page, 0)
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _run(blocks, {}, str(ROOT / "docs" / page))


def test_block_extraction():
    text = "a\n<!-- doc-test: skip: why -->\n```python\nx = 1\n```\n```python\ny = 2\n```\n"
    assert readme_blocks(text) == ([(7, "y = 2")], [("x = 1", "why")])
    page = ("T\n\n.. emkit-doc-test: skip (no)\n\n.. code-block:: python\n\n    a = 1\n\n"
            "Text\n\n.. code-block:: python\n\n    b = 2\n    c = 3\n\nEnd\n")
    run, skipped = rst_blocks(page)
    assert skipped == 1 and [code.strip() for _, code in run] == ["b = 2\nc = 3"]


def test_api_reference_lists_every_public_name():
    """docs/api.rst has an entry for each public name (add new names there too)."""
    import emkit
    import emkit.datasets
    import emkit.distributions
    import emkit.plot

    listed = set(re.findall(r"^   (\w+)$", (ROOT / "docs" / "api.rst").read_text(), re.M))
    public = {n for n in emkit.__all__ if n not in ("__version__", "distributions")}
    public |= set(emkit.distributions.__all__) | set(emkit.datasets.__all__)
    public |= {n for n in vars(emkit.plot) if n.startswith(("plot_", "record_", "save_"))}
    assert not public - listed, f"add to docs/api.rst: {sorted(public - listed)}"
