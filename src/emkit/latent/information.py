"""Observed information of a fitted mixture by Louis' (1982) method.

A mixture's observed log-likelihood is ``L(theta) = sum_i w_i log sum_k
exp(a_ik)`` with ``a_ik = log pi_k + log f_k(x_i)`` (``w_i`` the row weights,
one without ``sample_weight``). Louis' identity writes minus its Hessian, the
observed information, as the complete-data information minus the missing
information, both conditional on the data:

``I_obs = sum_i w_i (E[-d2 l_ci | x_i] - Cov[d l_ci | x_i])``

where ``l_ci = sum_k z_ik a_ik`` is row ``i``'s complete-data log-likelihood.
Given ``x_i`` the labels ``z_i`` have the responsibilities ``r_ik``, so with
``g_ik = d a_ik / d theta`` and ``s_i = sum_k r_ik g_ik`` (row ``i``'s observed
score):

- complete information ``I_c = sum_i w_i sum_k r_ik (-d2 a_ik)``;
- missing information ``I_m = sum_i w_i (sum_k r_ik g_ik g_ik' - s_i s_i')``.

``I_c - I_m`` is *exactly* minus the Hessian of ``L`` at any ``theta`` (it is
the second derivative of ``log sum_k exp(a_ik)`` written out), not only at the
maximum: this is what the tests compare to a numerical Hessian. The
*empirical* information ``sum_i w_i s_i s_i'`` (outer product of the scores)
is returned as well; it estimates the same matrix at the maximum, less
precisely.

``-d2 a_ik`` enters only summed over rows with weights ``w_i r_ik``, so each
component family gives its curvature from weighted sums (no per-row
matrices); the scores are formed per chunk of rows. A row with a known label
(``labels``) has one-hot responsibilities and adds no missing information; a
row with nothing observed (all NaN) or of weight zero adds nothing.

Parameters are laid out as ``[free weights, component coordinates]``: the
weights ``pi_0 .. pi_{K-2}`` (``pi_{K-1} = 1 - sum``) when they are fitted,
then whatever coordinates the caller's component terms map into.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from emkit.latent.mixture import Mixture

# Scores held at once: rows x parameters (float64 entries).
_BLOCK_ENTRIES = 2_000_000


@dataclass(frozen=True)
class ComponentTerms:
    """One component's derivatives, in its own coordinates, and where they go.

    Attributes
    ----------
    score : callable ``(X) -> (n_samples, m)``
        Gradient of ``log f_k(x_i)`` in the component's ``m`` local coordinates.
    curvature : callable ``(X, weights) -> (m, m)``
        ``-sum_i weights_i d2 log f_k(x_i)`` in the same coordinates.
    embed : ndarray of shape (m, n_component_parameters)
        Local coordinates from the mixture's free component parameters
        (linear); zero columns for parameters it does not depend on, no
        columns at all when nothing of it is free.
    prior_curvature : ndarray of shape (m, m) or None
        Minus the Hessian of the component's log prior (a MAP fit): added
        once to the complete information, so that the observed information
        is that of the log posterior.
    embed_curvature : (columns, tensor) or None
        Where the local coordinates are a *curved* function of the free
        parameters (``embed`` its Jacobian at the fit): its second derivatives
        ``tensor[j, a, b] = d2 local_j / d free_columns[a] d free_columns[b]``,
        shape (m, len(columns), len(columns)). The complete information then
        has the extra term ``-sum_j (sum_i w_i r_ik score_ij) tensor[j]``.
    """

    score: Callable[[np.ndarray], np.ndarray]
    curvature: Callable[[np.ndarray, np.ndarray], np.ndarray]
    embed: np.ndarray
    prior_curvature: np.ndarray | None = None
    embed_curvature: tuple[np.ndarray, np.ndarray] | None = None


@dataclass(frozen=True)
class Information:
    """The terms of Louis' identity over some rows (see the module docstring).

    Attributes
    ----------
    complete : ndarray of shape (q, q)
    missing : ndarray of shape (q, q)
    empirical : ndarray of shape (q, q)
        ``sum_i w_i s_i s_i'``.

    With component priors (MAP fits) ``complete`` and ``empirical`` include
    minus the Hessian of the log prior: the information is the log posterior's.
    counts : ndarray of shape (K,)
        ``sum_i w_i r_ik``: the rows each component stands for.
    """

    complete: np.ndarray
    missing: np.ndarray
    empirical: np.ndarray
    counts: np.ndarray

    @property
    def observed(self) -> np.ndarray:
        """``complete - missing``: minus the Hessian of the observed log-likelihood."""
        return self.complete - self.missing


def weight_gradients(weights: np.ndarray) -> np.ndarray:
    """``d log pi_k / d (pi_0 .. pi_{K-2})``, shape (K, K - 1).

    Minus the Hessian of ``log pi_k`` is the outer product of its row, ``log``
    of a linear function of the free weights.
    """
    k = weights.size
    with np.errstate(divide="ignore"):
        return np.vstack([np.eye(k - 1) / weights[:-1, None], -np.ones(k - 1) / weights[-1]])


@dataclass(frozen=True)
class MixingTerms:
    """How ``log pi_ik`` depends on the mixing parameters (the first ``n_free`` ones).

    Attributes
    ----------
    n_free : int
    gradients : callable ``(X) -> (n_samples, K, n_free)``
        ``d log pi_ik / d gamma`` for each row and component.
    curvature : callable ``(X, weighted_resp) -> (n_free, n_free)``
        ``-sum_i sum_k weighted_resp_ik d2 log pi_ik / d gamma2``.
    """

    n_free: int
    gradients: Callable[[np.ndarray], np.ndarray]
    curvature: Callable[[np.ndarray, np.ndarray], np.ndarray]


def constant_weights(weights: np.ndarray) -> MixingTerms:
    """Mixing weights ``pi_0 .. pi_{K-2}`` free, the same for every row."""
    grad = weight_gradients(np.asarray(weights, np.float64))

    def gradients(X: np.ndarray) -> np.ndarray:
        return np.broadcast_to(grad, (X.shape[0], *grad.shape))

    def curvature(X: np.ndarray, weighted: np.ndarray) -> np.ndarray:
        return (grad.T * weighted.sum(axis=0)) @ grad

    return MixingTerms(grad.shape[1], gradients, curvature)


def mixture_information(
    model: Mixture,
    X: np.ndarray,
    terms: Sequence[ComponentTerms],
    *,
    fit_weights: bool,
    sample_weight: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    mixing: MixingTerms | None = None,
) -> Information:
    """Louis' terms of a mixture's observed information on the rows of ``X``.

    Parameters
    ----------
    model : Mixture
        The fitted mixture (its ``log_resp`` gives the responsibilities).
    X : ndarray of shape (n_samples, n_features)
    terms : sequence of ComponentTerms, one per component
    fit_weights : bool
        Whether the weights are free parameters (the first ``K - 1``).
    sample_weight : ndarray of shape (n_samples,), optional
    labels : ndarray of int of shape (n_samples,), optional
        A component index for rows whose component is known, -1 elsewhere.
    mixing : MixingTerms, optional
        Mixing proportions that vary by row (a gate); by default, with
        ``fit_weights``, the constant weights of ``model``.

    Returns
    -------
    Information
    """
    k = len(terms)
    if mixing is None and fit_weights and k > 1:
        mixing = constant_weights(model.weights)
    n_weights = 0 if mixing is None else mixing.n_free
    q = n_weights + (terms[0].embed.shape[1] if terms else 0)
    # Each component's derivatives, weights first, in its own coordinates; embedded
    # into the free parameters once, at the end (a row's score of component c
    # touches only the weights and component c's coordinates).
    embeds = [_augmented_embed(term.embed, n_weights) for term in terms]
    columns = [np.flatnonzero((embed != 0).any(axis=0)) for embed in embeds]
    local_complete = [np.zeros((e.shape[0],) * 2) for e in embeds]
    local_outer = [np.zeros((e.shape[0],) * 2) for e in embeds]
    empirical = np.zeros((q, q))
    counts = np.zeros(k)
    mixing_complete = np.zeros((n_weights, n_weights))
    # Each curved component's summed score in its local coordinates (see ComponentTerms).
    gradients = [np.zeros(term.embed.shape[0]) for term in terms]
    step = max(1, _BLOCK_ENTRIES // max(1, q + max(e.shape[0] for e in embeds)))
    for start in range(0, X.shape[0], step):
        rows = slice(start, start + step)
        chunk, resp, w = _chunk_terms(model, X[rows], _part(sample_weight, rows),
                                      _part(labels, rows), start)
        if chunk.shape[0] == 0:
            continue
        weighted = resp * w[:, None]
        counts += weighted.sum(axis=0)
        observed = np.zeros((chunk.shape[0], q))
        if n_weights:
            grad_weights = mixing.gradients(chunk)
            mixing_complete += mixing.curvature(chunk, weighted)
        for c, (term, embed) in enumerate(zip(terms, embeds, strict=True)):
            local = term.score(chunk)
            if term.embed_curvature is not None:
                gradients[c] += weighted[:, c] @ local
            if n_weights:
                local = np.hstack([grad_weights[:, c], local])
            # x.T @ x of one array (BLAS syrk) is about twice as fast as a general product.
            root = local * np.sqrt(weighted[:, c:c + 1])
            local_outer[c] += root.T @ root
            local_complete[c][n_weights:, n_weights:] += term.curvature(chunk, weighted[:, c])
            used = columns[c]  # the weights and this component's own parameters
            observed[:, used] += (local * resp[:, c:c + 1]) @ embed[:, used]
        observed *= np.sqrt(w)[:, None]
        empirical += observed.T @ observed
    complete, expected_outer, prior = np.zeros((q, q)), np.zeros((q, q)), np.zeros((q, q))
    for c, (term, embed) in enumerate(zip(terms, embeds, strict=True)):
        if term.prior_curvature is not None:
            local_prior = np.zeros_like(local_complete[c])
            local_prior[n_weights:, n_weights:] = term.prior_curvature
            prior += embed.T @ local_prior @ embed
        complete += embed.T @ local_complete[c] @ embed
        if term.embed_curvature is not None:
            free, tensor = term.embed_curvature
            at = n_weights + np.asarray(free)
            complete[np.ix_(at, at)] -= np.tensordot(gradients[c], tensor, axes=1)
        expected_outer += embed.T @ local_outer[c] @ embed
    complete[:n_weights, :n_weights] += mixing_complete
    # A prior's curvature is the log posterior's, known exactly: it joins both estimates.
    return Information(
        complete=_symmetric(complete + prior), missing=_symmetric(expected_outer - empirical),
        empirical=_symmetric(empirical + prior), counts=counts,
    )


def _augmented_embed(embed: np.ndarray, n_weights: int) -> np.ndarray:
    """``[free weights, local coordinates]`` from the free parameters, shape (n_weights + m, q)."""
    m, q_components = embed.shape
    out = np.zeros((n_weights + m, n_weights + q_components))
    out[:n_weights, :n_weights] = np.eye(n_weights)
    out[n_weights:, n_weights:] = embed
    return out


def _part(values: np.ndarray | None, rows: slice) -> np.ndarray | None:
    return None if values is None else values[rows]


def _chunk_terms(
    model: Mixture, chunk: np.ndarray, weights: np.ndarray | None,
    labels: np.ndarray | None, start: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The chunk's informative rows, their responsibilities and their weights.

    Rows with nothing observed or weight zero are dropped; known rows get
    one-hot responsibilities.
    """
    keep = ~np.isnan(chunk).all(axis=1)
    if weights is not None:
        keep &= weights > 0
    chunk = chunk[keep]
    w = np.ones(chunk.shape[0]) if weights is None else weights[keep]
    log_resp, log_norm = model.log_resp(chunk)
    bad = ~np.isfinite(log_norm)
    if labels is not None:
        labels = labels[keep]
        known = labels >= 0
        bad &= ~known
    if bad.any():
        row = start + int(np.flatnonzero(keep)[np.flatnonzero(bad)[0]])
        raise ValueError(
            f"row {row} has probability zero under every component (or is not finite): it "
            "has no log-likelihood, so there is no information to compute"
        )
    resp = np.exp(log_resp.astype(np.float64))
    if labels is not None and known.any():
        resp[known] = np.eye(resp.shape[1])[labels[known]]
    return chunk, resp, w


def _symmetric(matrix: np.ndarray) -> np.ndarray:
    return 0.5 * (matrix + matrix.T)
