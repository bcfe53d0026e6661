"""Online (stepwise) EM: blend statistics of successive mini-batches, not parameters.

Cappé and Moulines (2009), Liang and Klein (2009): after each batch,

    s <- (1 - g_t) s + g_t s_batch,   g_t = (t + t0) ** -kappa,

with both statistics normalised per row, so batches of different sizes mix
by their step, not by their length; then the usual M-step on ``s``. With
``kappa`` in (0.5, 1] the steps satisfy the Robbins-Monro conditions; smaller
``kappa`` and ``t0`` forget the past faster.

Statistics taken around a reference (Gaussian second moments around the
means of the E-step) must be re-centred to the batch's reference before
blending: :func:`recentred` walks a model and its statistics together and
lets each Gaussian part move its moments (``GaussianStats.recentred``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from typing import Any

from emkit.core._parallel import single_threaded_blas
from emkit.core.stats import Stats, StatsTuple
from emkit.distributions import Gaussian as GaussianDistribution
from emkit.distributions import Independent
from emkit.distributions.component_list import ComponentList
from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES
from emkit.distributions.gaussian.family import Gaussian
from emkit.latent.mixture import Mixture


def step_size(t: float, t0: float, kappa: float) -> float:
    """Weight of the ``t``-th blended batch (``t >= 1``): ``(t + t0) ** -kappa``.

    ``t`` may be fractional: a fitted model continued online counts as its rows
    over the batch's (see ``GaussianMixture.partial_fit``).
    """
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
        elif isinstance(value, tuple):  # the parts of a StatsTuple
            values[f.name] = tuple(scaled(part, factor) for part in value)
        else:
            values[f.name] = value * factor
    return type(stats)(**values)


def per_row(stats: Stats) -> Stats:
    """Statistics divided by their ``n_samples``: averages over rows, ``n_samples`` one."""
    return scaled(stats, 1.0 / stats.n_samples)


def blend(running: Stats, batch: Stats, step: float) -> Stats:
    """``(1 - step) * running + step * batch``; both around the same references."""
    return scaled(running, 1.0 - step) + scaled(batch, step)


def recentred(stats: Stats, model: Any) -> Stats:
    """``stats`` (from an earlier E-step) moved to the reference points ``model`` uses now.

    The E-step of ``model`` takes Gaussian moments around its current means;
    statistics kept from earlier steps are re-centred there (exactly) so that
    the two can be blended. Statistics without a reference pass unchanged.
    """
    if isinstance(model, Mixture):
        return replace(stats, components=recentred(stats.components, model.components))
    if isinstance(model, Gaussian):
        return stats.recentred(model.means, model.structure)
    if isinstance(model, GaussianDistribution):
        structure = COVARIANCE_STRUCTURES[model.covariance_type]
        return stats.recentred(model.mean[None], structure)
    parts = _parts(model)
    if parts is not None and isinstance(stats, StatsTuple):
        pairs = zip(stats.parts, parts, strict=True)
        return StatsTuple(parts=tuple(recentred(s, m) for s, m in pairs))
    return stats


def _parts(model: Any) -> tuple[Any, ...] | None:
    """The sub-models whose statistics a StatsTuple holds, in order."""
    if isinstance(model, ComponentList):
        return model.distributions
    if isinstance(model, Independent):
        return model.components
    return None


def online_step(model: Any, running: Stats | None, batch: Stats, t: float, t0: float,
                kappa: float) -> tuple[Stats, Any]:
    """One stepwise-EM update from a batch's statistics under ``model``.

    Returns the new running (per-row) statistics, ``batch``'s own if there
    were none yet, and the model after the M-step on them. ``t`` counts the
    batches already blended in (from 1).
    """
    batch = per_row(batch)
    if running is not None:
        batch = blend(recentred(running, model), batch, step_size(t, t0, kappa))
    with single_threaded_blas():  # tiny factorisations (see emkit.core.engine.run_em)
        return batch, model.m_step(batch)
