"""Checkpoints of a GaussianMixture fit: resume after a crash and end exactly where an
uninterrupted fit ends.

After every ``checkpoint_every``-th iteration (and at the end of every restart)
the state of the fit is written to ``checkpoint`` in the model file layout of
:mod:`emkit.io` (JSON plus checksummed ``.npy``, never pickle): the restart in
progress, its mixture after the last M-step, its log-likelihood history and
iteration count, and the best finished restart so far. The restarts' seeds
come from the integer ``random_state``, so nothing random needs saving.

Writes are atomic: the new state goes to ``PATH.next`` (itself written to a
temporary file and renamed), the previous checkpoint moves to ``PATH.prev``,
then ``PATH.next`` becomes ``PATH``. A crash at any point leaves a readable
``PATH`` or ``PATH.prev``; a damaged ``PATH`` is reported, naming ``PATH.prev``.

A checkpoint resumes only the fit that wrote it: the same parameters, and the
same data, recognised by their number of rows and width and a digest of their
first and last rows and column sums (for streamed and Dask data, of the
seeded initialisation sample, which is drawn anyway). While a fit runs it holds
an exclusive lock on ``PATH.lock``, so two processes cannot write one checkpoint.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emkit import io as model_io
from emkit.core.engine import Callback, EMResult, run_em
from emkit.distributions.gaussian.covariance import COVARIANCE_STRUCTURES
from emkit.distributions.gaussian.family import Gaussian
from emkit.latent.mixture import Mixture

FORMAT_NAME = "emkit-checkpoint"
FORMAT_VERSION = 1

# Rows at each end of the data that the data digest reads in full.
_DIGEST_ROWS = 256

# Parameters that do not change the result, so a checkpoint written under other
# values still resumes.
_IGNORED_PARAMS = ("callback", "checkpoint", "checkpoint_every", "verbose", "verbose_interval")


class CheckpointError(model_io.ModelFileError):
    """A checkpoint that cannot be used: damaged, or written by a different fit."""


@dataclass
class FitState:
    """Where a fit with restarts stands.

    Attributes
    ----------
    restart : int
        Index of the restart in progress.
    run : EMResult or None
        That restart so far (None: not started).
    best : EMResult or None
        The best finished restart before it.

    Examples
    --------
    >>> from emkit.estimators.checkpoint import FitState
    >>> FitState()  # a fit that has not started
    FitState(restart=0, run=None, best=None)
    """

    restart: int = 0
    run: EMResult | None = None
    best: EMResult | None = None


def continue_em(
    model: Any, source: Any, partial: EMResult | None, *, tol: float, max_iter: int,
    callback: Callback | None,
) -> EMResult:
    """:func:`emkit.core.engine.run_em` from ``model``, or onwards from a ``partial`` run.

    A partial run continues from its last model with its history, so the
    iterations that follow are exactly those an uninterrupted run would do.
    """
    if partial is None:
        return run_em(model, source, tol=tol, max_iter=max_iter, callback=callback)
    if partial.converged or partial.n_iter >= max_iter:
        return partial
    done = partial.n_iter

    def shifted(iteration: int, lower_bound: float, change: float, fitted: Any) -> None:
        if callback is not None:
            callback(done + iteration, lower_bound, change, fitted)

    rest = run_em(partial.model, source, tol=tol, max_iter=max_iter - done,
                  previous_lower_bound=partial.history[-1], callback=shifted)
    return EMResult(model=rest.model, history=[*partial.history, *rest.history],
                    n_iter=done + rest.n_iter, converged=rest.converged)


class Checkpoint:
    """The checkpoint file of one estimator's fit.

    Parameters
    ----------
    estimator : GaussianMixture
        Its ``checkpoint``, ``checkpoint_every``, ``tol`` and ``max_iter`` are used,
        and its parameters fingerprint the fit.
    n_features : int
    data : str, optional
        What identifies the data (:func:`data_digest`); a checkpoint written for
        other data is refused.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from emkit import GaussianMixture
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> path = os.path.join(tempfile.mkdtemp(), "fit.ckpt")
    >>> first = GaussianMixture(2, random_state=0, checkpoint=path).fit(X)
    >>> again = GaussianMixture(2, random_state=0, checkpoint=path).fit(X)  # resumes: done
    >>> bool(np.array_equal(first.means_, again.means_))
    True
    """

    def __init__(self, estimator: Any, n_features: int, data: str | None = None) -> None:
        if isinstance(estimator.random_state, bool) or not isinstance(
                estimator.random_state, int | np.integer):
            raise ValueError(
                "checkpoint= needs an integer random_state, so that a resumed fit draws "
                f"the same starts; got random_state={estimator.random_state!r}"
            )
        self.estimator = estimator
        self.path = _checked_path(estimator.checkpoint)
        self.previous = self.path.with_name(self.path.name + ".prev")
        self.next = self.path.with_name(self.path.name + ".next")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        for companion in (self.previous, self.next, self.lock_path):
            if companion.exists() and not companion.is_file():
                raise ValueError(f"checkpoint companion {companion} exists and is not a file")
        self.fingerprint = _fingerprint(estimator, n_features)
        if data is not None:
            self.fingerprint["data"] = data

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an exclusive lock on ``PATH.lock`` while the fit reads and writes ``PATH``.

        Raises
        ------
        CheckpointError
            If another fit (in this or another process) holds it.
        """
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; one writer is the user's care
            yield
            return
        with open(self.lock_path, "a") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise CheckpointError(
                    f"checkpoint {self.path} is in use by another fit (it holds "
                    f"{self.lock_path}); wait for it to finish, or pass another checkpoint path"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    # ------------------------------------------------------------ reading

    def resume(self) -> FitState:
        """The saved state, or a fresh one when there is no checkpoint yet."""
        if self.path.is_file():
            return self._read(self.path)
        if self.previous.is_file():
            # A crash between moving PATH aside and renaming PATH.next: the previous is good.
            return self._read(self.previous)
        return FitState()

    def _read(self, path: Path) -> FitState:
        try:
            metadata, arrays = model_io.read_archive(path, FORMAT_NAME)
        except model_io.ModelFileError as exc:
            hint = (f"; the previous checkpoint {self.previous} is intact: rename it to "
                    f"{self.path.name} to resume from it" if path == self.path
                    and self.previous.is_file() else "")
            raise CheckpointError(f"cannot resume from checkpoint: {exc}{hint}") from None
        version = metadata.get("format_version")
        if version != FORMAT_VERSION:
            raise CheckpointError(
                f"{path} has checkpoint format {version!r}, this emkit reads {FORMAT_VERSION}"
            )
        if metadata.get("fit") != self.fingerprint:
            changed = _difference(metadata.get("fit"), self.fingerprint)
            what = ("for different data" if isinstance(metadata.get("fit"), dict) and
                    _difference_names(metadata["fit"], self.fingerprint) == ["data"]
                    else "by a different fit")
            raise CheckpointError(
                f"{path} was written {what} ({changed}): delete it to start afresh, or pass "
                "another checkpoint path"
            )
        try:
            return FitState(
                restart=int(metadata["restart"]),
                run=self._result(metadata["runs"].get("run"), "run", arrays),
                best=self._result(metadata["runs"].get("best"), "best", arrays),
            )
        except (KeyError, AttributeError, TypeError, ValueError, IndexError) as exc:
            # Checksummed arrays but a metadata.json edited or from another writer.
            raise CheckpointError(
                f"{path} is damaged: its metadata does not describe a fit state "
                f"({type(exc).__name__}: {exc}); delete it to start afresh"
            ) from None

    def _result(self, info: dict | None, prefix: str, arrays: dict) -> EMResult | None:
        if info is None:
            return None
        part = {name: arrays[f"{prefix}/{name}.npy"]
                for name in ("weights", "means", "covariances", "precisions_cholesky", "history")}
        estimator = self.estimator
        gaussian = Gaussian(structure=COVARIANCE_STRUCTURES[estimator.covariance_type],
                            means=part["means"], covariances=part["covariances"],
                            precisions_cholesky=part["precisions_cholesky"],
                            reg_covar=estimator.reg_covar)
        # The fit's own mixture: its frozen parameters, prior and noise component, so the
        # resumed run's M-steps are the uninterrupted run's.
        model = estimator._with_noise(estimator._with_frozen(
            Mixture(weights=part["weights"], components=gaussian)))
        return EMResult(model=model,
                        history=[float(h) for h in part["history"]],
                        n_iter=int(info["n_iter"]), converged=bool(info["converged"]))

    # ------------------------------------------------------------ writing

    def recorder(self, state: FitState, callback: Callback | None) -> Callback:
        """Engine callback for restart ``state.restart``: the user's callback, then a write.

        ``state.run`` holds the iterations before this call (None for a fresh run).
        """
        every, estimator = self.estimator.checkpoint_every, self.estimator
        history = list(state.run.history) if state.run is not None else []

        def record(iteration: int, lower_bound: float, change: float, model: Any) -> None:
            if callback is not None:
                callback(iteration, lower_bound, change, model)
            history.append(lower_bound)
            # The engine stops after this iteration when either holds: write the end of a run.
            converged = abs(change) < estimator.tol
            if iteration % every == 0 or converged or iteration == estimator.max_iter:
                run = EMResult(model=model, history=list(history), n_iter=iteration,
                               converged=converged)
                self.write(FitState(restart=state.restart, run=run, best=state.best))

        return record

    def write(self, state: FitState) -> None:
        """Replace the checkpoint atomically, keeping the one before as ``PATH.prev``."""
        arrays: dict[str, np.ndarray] = {}
        runs = {"run": _describe(state.run, "run", arrays),
                "best": _describe(state.best, "best", arrays)}
        metadata = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
                    "class": type(self.estimator).__name__, "fit": self.fingerprint,
                    "restart": state.restart, "runs": runs}
        model_io.write_archive(self.next, metadata, arrays)
        if self.path.exists():
            os.replace(self.path, self.previous)
        os.replace(self.next, self.path)


def _describe(result: EMResult | None, prefix: str, arrays: dict) -> dict | None:
    """Scalars of a run for the JSON; its arrays into ``arrays``."""
    if result is None:
        return None
    gaussian = result.model.components
    gaussian = getattr(gaussian, "gaussian", gaussian)  # a noise component's Gaussian ones
    arrays.update({
        f"{prefix}/weights.npy": result.model.weights,
        f"{prefix}/means.npy": gaussian.means,
        f"{prefix}/covariances.npy": gaussian.covariances,
        f"{prefix}/precisions_cholesky.npy": gaussian.precisions_cholesky,
        f"{prefix}/history.npy": np.asarray(result.history, dtype=np.float64),
    })
    return {"n_iter": result.n_iter, "converged": result.converged}


def _fingerprint(estimator: Any, n_features: int) -> dict[str, Any]:
    """What determines the fit's result: plain parameters, digests of array ones, the width."""
    found: dict[str, Any] = {"n_features": int(n_features)}
    for name, value in sorted(estimator.get_params(deep=False).items()):
        if name in _IGNORED_PARAMS:
            continue
        if value is None or isinstance(value, str | bool | int | float | np.generic):
            found[name] = value.item() if isinstance(value, np.generic) else value
        elif hasattr(value, "to_dict"):  # a ConjugatePrior: its hyperparameters
            found[name] = value.to_dict()
        else:
            array = np.ascontiguousarray(value, dtype=np.float64)
            found[name] = f"{array.shape}:{hashlib.sha256(array.tobytes()).hexdigest()[:16]}"
    return found


def _checked_path(value: Any) -> Path:
    """The checkpoint path: a file (or nothing yet) in an existing folder."""
    if not str(value).strip():
        raise ValueError("checkpoint= must name a file; got an empty path (use None for none)")
    path = Path(value)
    if path.exists() and not path.is_file():
        raise ValueError(
            f"checkpoint={str(value)!r} exists and is not a file (a directory?): "
            "name a file to write the checkpoint to"
        )
    if not path.parent.is_dir():
        raise ValueError(
            f"checkpoint={str(value)!r}: folder {path.parent} does not exist (create it first)"
        )
    return path


def data_digest(rows: np.ndarray, source: Any) -> str:
    """What identifies a fit's data: rows, width, and a digest of its first and last rows
    and column sums.

    ``rows`` are the rows the fit initialises from: all of them in memory (the
    sums take one quick pass), the seeded uniform sample for streamed and Dask
    data (already drawn, so no extra pass); ``source`` gives the row count
    where it is known.
    """
    rows = np.asarray(rows)
    digest = hashlib.sha256()
    digest.update(f"{rows.dtype.str}:{rows.shape}".encode())
    for part in (rows[:_DIGEST_ROWS], rows[-_DIGEST_ROWS:]):
        digest.update(np.ascontiguousarray(part).tobytes())
    with np.errstate(over="ignore", invalid="ignore"):
        sums = np.nansum(rows, axis=0, dtype=np.float64)
    digest.update(sums.tobytes())
    n_rows = _row_count(source, rows)
    counted = "?" if n_rows is None else str(n_rows)
    return f"{counted} rows x {rows.shape[1]}, sha256 {digest.hexdigest()[:16]}"


def _row_count(source: Any, rows: np.ndarray) -> int | None:
    """Rows of the whole data, None where the source cannot say without reading it (CSV)."""
    for candidate in (source, getattr(source, "source", None)):
        n = getattr(candidate, "n_samples", None)
        if n is not None:
            return int(n)
    X = getattr(source, "X", None)
    return int(X.shape[0]) if X is not None else None


def _difference_names(saved: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    return sorted(n for n in {*saved, *wanted} if saved.get(n) != wanted.get(n))


def _difference(saved: Any, wanted: dict[str, Any]) -> str:
    if not isinstance(saved, dict):
        return "no fit description"
    names = _difference_names(saved, wanted)
    return ", ".join(f"{n}: {saved.get(n)!r} there, {wanted.get(n)!r} now" for n in names)
