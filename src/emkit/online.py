"""Online (stepwise) EM: blend statistics of successive mini-batches, not parameters.

Cappé and Moulines (2009), Liang and Klein (2009): after each batch,

    s <- (1 - g_t) s + g_t s_batch,   g_t = (t + t0) ** -kappa,

with both statistics normalised per row, so batches of different sizes mix
by their step, not by their length; then the usual M-step on ``s``. With
``kappa`` in (0.5, 1] the steps satisfy the Robbins-Monro conditions; smaller
``kappa`` and ``t0`` forget the past faster.

Statistics taken around a reference (Gaussian second moments around the
means of the E-step) must be re-centred to the batch's reference before
blending; that is the family's business (``GaussianStats.recentred``).
"""

from __future__ import annotations

import dataclasses

from emkit.stats import Stats


def step_size(t: int, t0: float, kappa: float) -> float:
    """Weight of the ``t``-th blended batch (``t >= 1``): ``(t + t0) ** -kappa``."""
    return float((t + t0) ** -kappa)


def scaled(stats: Stats, factor: float) -> Stats:
    """Every summed field multiplied by ``factor``; reference fields kept as they are."""
    values = {}
    for f in dataclasses.fields(stats):
        value = getattr(stats, f.name)
        if f.metadata.get("reference", False):
            values[f.name] = value
        elif isinstance(value, Stats):
            values[f.name] = scaled(value, factor)
        else:
            values[f.name] = value * factor
    return type(stats)(**values)


def per_row(stats: Stats) -> Stats:
    """Statistics divided by their ``n_samples``: averages over rows, ``n_samples`` one."""
    return scaled(stats, 1.0 / stats.n_samples)


def blend(running: Stats, batch: Stats, step: float) -> Stats:
    """``(1 - step) * running + step * batch``; both around the same references."""
    return scaled(running, 1.0 - step) + scaled(batch, step)
