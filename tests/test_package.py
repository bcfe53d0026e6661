"""A package complete on its own: the built wheel carries the data, py.typed and the licence."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _project_version() -> str:
    """pyproject.toml's version (tomllib is Python >= 3.11; the project supports 3.10)."""
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(r'^version = "([^"]+)"', text, re.MULTILINE).group(1)


def _build_wheel(tmp_path: Path) -> Path:
    """Build the wheel from a copy of the sources (the checkout gets no build/ folder)."""
    pytest.importorskip("setuptools", minversion="77")
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(ROOT / "src", tree / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(tree)],
        check=True, capture_output=True, timeout=120,
    )
    (wheel,) = out.glob("emkit-*.whl")
    return wheel


def test_wheel_carries_data_types_and_licence(tmp_path):
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    bundled = {p.relative_to(ROOT / "src").as_posix()
               for p in (ROOT / "src/emkit/datasets/data").glob("*.csv")}
    assert bundled and bundled <= names
    assert "emkit/py.typed" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    version = _project_version()
    assert wheel.name.startswith(f"emkit-{version}-")


def test_version_is_one_number_everywhere():
    import emkit

    version = _project_version()
    assert emkit.__version__ == version
    assert f"version: {version}" in (ROOT / "CITATION.cff").read_text()


def test_licence_and_changelog_are_there():
    assert "BSD 3-Clause" in (ROOT / "LICENSE").read_text()
    assert "emkit developers" in (ROOT / "LICENSE").read_text()
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "## Unreleased" in changelog and "## 0.1.0" in changelog
