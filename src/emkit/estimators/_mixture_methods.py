"""What every fitted mixture estimator answers, written once.

``GaussianMixture`` and ``MixtureModel`` differ in how they fit and validate;
scoring, prediction, sampling and the information criteria are the same
questions asked of the fitted :class:`emkit.latent.mixture.Mixture`. An estimator
provides four hooks: ``_fit(X)`` (fit, returning the validated rows or the
scalable input), ``_model()`` (the fitted mixture), ``_checked(X)`` (the
model and validated rows) and ``_chunk_rows(n_features)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from emkit.data import _validation as v
from emkit.data import scale
from emkit.data.sources import map_chunks
from emkit.latent.mixture import Mixture

RowFunction = Callable[[Mixture, np.ndarray], np.ndarray]


def _row_log_likelihood(model: Mixture, chunk: np.ndarray) -> np.ndarray:
    """Each row's log-likelihood; NaN for a row with nothing observed.

    The E-step gives such a row density one (log 0) so that it adds nothing to
    the fit; as a score that would rank it the most typical row.
    """
    scores = model.log_resp(chunk)[1]
    empty = np.isnan(chunk).all(axis=1)
    if empty.any():
        scores = scores.astype(np.result_type(scores.dtype, np.float32), copy=True)
        scores[empty] = np.nan
    return scores


def _most_likely(model: Mixture, chunk: np.ndarray) -> np.ndarray:
    return model.weighted_log_prob(chunk).argmax(axis=1)


class MixtureMethods:
    """Scoring, prediction, sampling and BIC/AIC of a fitted mixture estimator."""

    def fit_predict(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """Fit, then return the most likely component of each row, shape (n_samples,).

        ``fit_params``: ``sample_weight`` and ``labels``, as :meth:`fit` takes them.
        """
        X = self._fit(X, **fit_params)
        if scale.is_scalable(X):
            return self.predict(X)
        # A final E-step on the validated rows keeps fit_predict(X) consistent with
        # fit(X).predict(X).
        return self._over_array(self._model(), X, _most_likely)

    def _over_rows(self, X: Any, func: RowFunction, n_out: int | None) -> Any:
        """``func(model, chunk)`` over the rows of ``X``, chunk by chunk.

        In-memory results keep the data's float dtype (kernels may compute
        float32 data in float64); file sources and dask arrays go through
        :mod:`emkit.data.scale` (lazily for dask).
        """
        if scale.is_scalable(X):
            model, d = self._model(), self.n_features_in_
            return scale.map_rows(X, lambda c: func(model, c), d, n_out, self._chunk_rows(d))
        model, X = self._checked(X)
        return self._over_array(model, X, func)

    def _over_array(self, model: Mixture, X: np.ndarray, func: RowFunction) -> np.ndarray:
        out = map_chunks(lambda c: func(model, c), X, self._chunk_rows(X.shape[1]))
        return out.astype(X.dtype, copy=False) if out.dtype.kind == "f" else out

    def _log_resp(self, X: Any) -> Any:
        return self._over_rows(X, lambda m, c: m.log_resp(c)[0], len(self._model().weights))

    def score_samples(self, X: Any) -> Any:
        """Log-likelihood of each row, shape (n_samples,); lazy for a dask array.

        A row with every value missing (all NaN) has no likelihood: it scores
        NaN (it is neither typical nor an outlier). A row so far out that its
        density underflows under every component scores ``-inf``.
        """
        return self._over_rows(X, _row_log_likelihood, None)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Average log-likelihood per row, over the rows with something observed.

        So ``score`` of the training rows is the average ``history_`` records;
        NaN if no row has an observed value. With ``sample_weight``, the
        weighted average (as ``history_`` of a weighted fit).
        """
        log_lik, n = self._log_likelihood_and_rows(X, sample_weight)
        return log_lik / n if n else float("nan")

    def predict(self, X: Any) -> Any:
        """Most likely component of each row, shape (n_samples,); lazy for a dask array."""
        # The normaliser is the same for every component of a row: the argmax of
        # the weighted log densities needs neither it nor an (n, K) result array.
        return self._over_rows(X, _most_likely, None)

    def predict_proba(self, X: Any) -> Any:
        """Responsibilities, shape (n_samples, n_components); rows sum to one.

        A row with nothing observed (all NaN) tells nothing about its
        component: it gets the mixing weights.
        """
        return np.exp(self._log_resp(X))

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw rows from the fitted mixture.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
            The component each row was drawn from (rows are grouped by component).
        """
        model = self._model()
        if not v.integer(1).accepts(n_samples):
            raise ValueError(f"n_samples must be an integer >= 1, got {n_samples!r}")
        rng = np.random.default_rng(v.seed_sequence(self.random_state))
        weights = model.weights.astype(np.float64)
        counts = rng.multinomial(n_samples, weights / weights.sum())
        X = model.components.sample(counts, rng)
        return X, np.repeat(np.arange(len(counts)), counts)

    def _n_parameters(self) -> int:
        return self._model().n_parameters

    def _log_likelihood_and_rows(
        self, X: Any, sample_weight: Any = None
    ) -> tuple[float, float]:
        """Total log-likelihood of ``X`` and its number of rows (arrays, files or dask).

        Rows with nothing observed (NaN scores) are neither summed nor counted,
        as in the fit's E-step. With ``sample_weight`` both are weighted (rows
        of weight zero are left out): ``n`` is the summed weight.
        """
        scores = self.score_samples(X)
        scores = np.asarray(scores.compute() if hasattr(scores, "compute") else scores)
        observed = ~np.isnan(scores)
        if sample_weight is None:
            return float(scores[observed].sum(dtype=np.float64)), int(observed.sum())
        weights = v.check_sample_weight(sample_weight, scores.shape[0])
        kept = observed & (weights > 0)
        return float(scores[kept].astype(np.float64) @ weights[kept]), float(weights[kept].sum())

    def bic(self, X: Any, sample_weight: Any = None) -> float:
        """Bayesian information criterion on ``X`` (lower is better).

        ``-2 log L + p log n``, ``p`` the free parameters; with
        ``sample_weight``, ``L`` and ``n`` are weighted (``n`` the summed
        weight), so integer weights give the BIC of the repeated rows.
        """
        log_lik, n = self._log_likelihood_and_rows(X, sample_weight)
        return -2 * log_lik + self._n_parameters() * np.log(n)

    def aic(self, X: Any, sample_weight: Any = None) -> float:
        """Akaike information criterion on ``X`` (lower is better); weighted as :meth:`bic`."""
        log_lik, _ = self._log_likelihood_and_rows(X, sample_weight)
        return -2 * log_lik + 2 * self._n_parameters()
