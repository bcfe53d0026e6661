"""One EM run with the variant an estimator asks for: the driver chooser shared by the mixtures."""

from __future__ import annotations

from typing import Any

import numpy as np

from emkit.core.acceleration import accelerated_driver
from emkit.core.engine import Callback, EMResult, run_em
from emkit.core.variants import run_best_seen


def run_variant(
    model: Any,
    source: Any,
    *,
    algorithm: str,
    accelerate: bool | str,
    codec: Any,
    tol: float,
    max_iter: int,
    previous_lower_bound: float = -np.inf,
    callback: Callback | None = None,
    stop_when: Any = None,
) -> EMResult:
    """Run EM from ``model`` (whose assignment policy is already set) with the right driver.

    ``"stochastic"``: exactly ``max_iter`` iterations, best parameters seen;
    ``accelerate``: True or ``"squarem"``, SQUAREM with ``codec``; ``"daarem"``,
    DAAREM with ``codec``; otherwise the plain engine loop, which alone takes
    ``stop_when`` (see :func:`~emkit.core.engine.run_em`).
    """
    if algorithm == "stochastic":
        return run_best_seen(model, source, max_iter=max_iter, callback=callback)
    driver = accelerated_driver(accelerate)
    if driver is not None:
        return driver(
            model, source, codec, tol=tol, max_iter=max_iter,
            previous_lower_bound=previous_lower_bound, callback=callback,
        )
    return run_em(
        model, source, tol=tol, max_iter=max_iter,
        previous_lower_bound=previous_lower_bound, callback=callback, stop_when=stop_when,
    )


def check_accelerate(estimator: Any) -> None:
    """Refuse ``accelerate=True`` with a variant that has no monotone objective to guard."""
    if estimator.accelerate and estimator.algorithm != "em":
        raise ValueError(
            f"{type(estimator).__name__}: accelerate=True needs algorithm='em', got "
            f"algorithm={estimator.algorithm!r}: extrapolating hard or stochastic "
            "iterates has no monotone objective to safeguard it"
        )
