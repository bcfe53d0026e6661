"""A command that answers at once: ``import emkit`` and ``emkit --help`` import nothing heavy.

Behaviour, not timing: each check runs in a fresh interpreter and looks at
``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")
HEAVY = ("numpy", "numba", "pandas", "pyarrow", "scipy", "sklearn", "matplotlib", "dask")


def _modules_after(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; the heavy modules it left in sys.modules."""
    probe = (
        f"{code}\nimport json, sys\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env=env, check=True, timeout=60)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_emkit_imports_nothing_heavy():
    assert _modules_after("import emkit") == []


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["fit", "--help"]])
def test_cli_help_and_version_import_nothing_heavy(argv):
    code = (
        "import sys\nfrom emkit.cli import main\n"
        f"sys.argv = ['emkit', *{argv!r}]\n"
        "try:\n    main()\nexcept SystemExit as stop:\n    assert stop.code == 0, stop.code\n"
    )
    assert _modules_after(code) == []


def test_public_names_resolve_lazily():
    import emkit

    listed = dir(emkit)
    for name in emkit.__all__:
        assert name in listed
        assert getattr(emkit, name) is not None
    assert emkit.GaussianMixture.__module__ == "emkit.estimators.gaussian_mixture"
    assert emkit.sources.__name__ == "emkit.data.sources"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        emkit.nope  # noqa: B018


def test_one_estimator_pays_only_for_itself():
    # KMeans needs numpy and scikit-learn, not pandas, matplotlib nor dask.
    heavy = _modules_after("from emkit import KMeans")
    assert "matplotlib" not in heavy and "dask" not in heavy


def test_load_works_right_after_a_lazy_import(tmp_path):
    path = tmp_path / "gm.npz"
    code = (
        "import numpy as np\nfrom emkit.estimators.gaussian_mixture import GaussianMixture\n"
        "from emkit.io import save\n"
        "X = np.random.default_rng(0).normal(size=(60, 2))\n"
        f"save(GaussianMixture(2, random_state=0).fit(X), {str(path)!r})\n"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    # a fresh interpreter that imported no estimator: load finds the class
    done = subprocess.run(
        [sys.executable, "-c", f"import emkit; print(type(emkit.load({str(path)!r})).__name__)"],
        env=env, capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "GaussianMixture"


def test_cli_choices_equal_the_library_constants():
    from emkit import cli
    from emkit.core.variants import ALGORITHMS
    from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES, MCLUST_MODELS
    from emkit.estimators.selection import CRITERIA

    assert cli.COVARIANCE_TYPES == tuple(sorted(COVARIANCE_STRUCTURES))
    assert cli.MCLUST_MODELS == tuple(MCLUST_MODELS)
    assert cli.ALGORITHMS == tuple(ALGORITHMS)
    from emkit.core.acceleration import ACCELERATIONS

    assert cli.ACCELERATIONS == tuple(ACCELERATIONS)
    assert cli.CRITERIA == tuple(CRITERIA)
    from emkit.distributions.regression import FAMILIES

    assert cli.REGRESSION_FAMILIES == tuple(FAMILIES)


def test_version_option_prints_the_package_version():
    from click.testing import CliRunner

    import emkit
    from emkit.cli import main

    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert emkit.__version__ in result.output
