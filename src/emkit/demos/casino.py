"""The occasionally dishonest casino (Durbin et al., *Biological Sequence Analysis*, 1998, ch. 3).

A casino rolls a fair die most of the time and now and then swaps in a loaded
one that shows six half the time (each other face one time in ten). It swaps
to the loaded die with probability 0.05 after a roll and back with
probability 0.1. We see only the faces. A two-state hidden Markov model with
categorical emissions, fitted by Baum-Welch without being told any of these
numbers, recovers the dice and the swapping rates, and the posterior
probability of the loaded die over time shows when the casino cheated.

The demo simulates the rolls, fits :class:`emkit.hmm.CategoricalHMM` from a
few random starts, prints the fitted against the true parameters and how
many rolls the Viterbi path and the posteriors assign to the right die, and
draws the posterior probability of the loaded die over the first rolls with
the true loaded stretches shaded (as Durbin's figure 3.5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from emkit.distributions import Categorical
from emkit.estimators.hidden_markov import HiddenMarkovModel
from emkit.estimators.hmm import CategoricalHMM

FAIR = np.full(6, 1 / 6)
LOADED = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.5])
TRANSMAT = np.array([[0.95, 0.05], [0.1, 0.9]])  # state 0 fair, state 1 loaded
STARTPROB = np.array([0.5, 0.5])
STATE_NAMES = ("fair", "loaded")


@dataclass(frozen=True)
class CasinoResult:
    """What the demo found: the fitted model (states ordered fair, loaded) and its scores."""

    model: CategoricalHMM
    rolls: np.ndarray
    dice: np.ndarray
    lengths: list[int]
    viterbi_accuracy: float
    posterior_accuracy: float
    picture: Path


def simulate(n_sequences: int, n_rolls: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Faces (coded 0..5 for 1..6) and dice (0 fair, 1 loaded) of ``n_sequences`` evenings."""
    casino = HiddenMarkovModel([Categorical(FAIR), Categorical(LOADED)],
                               startprob=STARTPROB, transmat=TRANSMAT)
    rng = np.random.default_rng(seed)
    parts = [casino.sample(n_rolls, random_state=rng) for _ in range(n_sequences)]
    return (np.concatenate([p[0] for p in parts]).astype(np.int64),
            np.concatenate([p[1] for p in parts]))


def fit(rolls: np.ndarray, lengths: list[int], seed: int, n_init: int = 5) -> CategoricalHMM:
    """Baum-Welch from ``n_init`` random starts, the states renamed fair (0) then loaded (1)."""
    model = CategoricalHMM(n_components=2, n_iter=500, tol=1e-4, n_init=n_init,
                           random_state=seed).fit(rolls, lengths)
    order = np.argsort(model.emissionprob_[:, 5])  # the loaded die shows six more often
    model.startprob_ = model.startprob_[order]
    model.transmat_ = model.transmat_[np.ix_(order, order)]
    model.emissionprob_ = model.emissionprob_[order]
    return model


def _table(echo: Callable[[str], None], title: str, columns: list[str],
           rows: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
    echo(title)
    echo(f"{'':>16}" + "".join(f"{c:>8}" for c in columns))
    for name, fitted, true in rows:
        echo(f"{name + ' fitted':>16}" + "".join(f"{v:>8.3f}" for v in fitted))
        echo(f"{name + ' true':>16}" + "".join(f"{v:>8.3f}" for v in true))


def draw(posterior: np.ndarray, dice: np.ndarray, path: Path) -> Path:
    """P(loaded) at each roll, with the rolls truly made with the loaded die shaded."""
    figure = Figure(figsize=(10, 3.2), layout="constrained")
    ax = figure.add_subplot()
    steps = np.arange(1, len(dice) + 1)
    ax.fill_between(steps, 0, 1, where=dice == 1, step="mid", color="tab:red", alpha=0.2,
                    label="loaded die in use (truth)")
    ax.plot(steps, posterior, color="tab:blue", lw=1.2, label="P(loaded | all rolls)")
    ax.set(xlim=(1, len(dice)), ylim=(0, 1.02), xlabel="roll", ylabel="probability",
           title="The occasionally dishonest casino: posterior probability of the loaded die")
    ax.legend(loc="upper right", fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    return path


def run(out_dir: str | Path = ".", echo: Callable[[str], None] = print, *,
        n_sequences: int = 10, n_rolls: int = 300, seed: int = 0) -> CasinoResult:
    """Simulate the casino, fit the HMM, print what it found and draw the posterior.

    Parameters
    ----------
    out_dir : str or Path
        Folder for ``casino.png`` (created if needed).
    echo : callable
        Where lines of text go.
    n_sequences, n_rolls : int
        Evenings simulated and rolls per evening.
    seed : int
        Seed of the simulation and of the random starts.

    Returns
    -------
    CasinoResult
    """
    rolls, dice = simulate(n_sequences, n_rolls, seed)
    lengths = [n_rolls] * n_sequences
    echo(f"The occasionally dishonest casino: {n_sequences} evenings of {n_rolls} rolls, "
         f"the loaded die in use for {int(dice.sum())} of {dice.size} rolls.")
    echo("Fitting a 2-state CategoricalHMM (Baum-Welch, 5 random starts), told nothing "
         "about the dice.\n")
    model = fit(rolls, lengths, seed)
    echo(f"Best start: {model.monitor_.iter} iterations, log-likelihood "
         f"{model.score(rolls, lengths):.2f} (the true parameters: "
         f"{_true_model().score(rolls, lengths):.2f}).\n")
    _table(echo, "Face probabilities", [str(face) for face in range(1, 7)],
           [(name, model.emissionprob_[k], (FAIR, LOADED)[k])
            for k, name in enumerate(STATE_NAMES)])
    echo("")
    _table(echo, "Switching probabilities (row: this roll's die, column: the next's)",
           list(STATE_NAMES),
           [(name, model.transmat_[k], TRANSMAT[k]) for k, name in enumerate(STATE_NAMES)])
    viterbi = model.predict(rolls, lengths)
    posterior = model.predict_proba(rolls, lengths)
    viterbi_accuracy = float((viterbi == dice).mean())
    posterior_accuracy = float((posterior.argmax(axis=1) == dice).mean())
    echo(f"\nRolls assigned to the right die: Viterbi path {viterbi_accuracy:.1%}, "
         f"most probable die at each roll {posterior_accuracy:.1%} "
         f"(always guessing fair: {1 - dice.mean():.1%}).")
    picture = draw(posterior[:n_rolls, 1], dice[:n_rolls], Path(out_dir) / "casino.png")
    echo(f"Picture written:\n  {picture}")
    return CasinoResult(model, rolls, dice, lengths, viterbi_accuracy, posterior_accuracy,
                        picture)


def _true_model() -> CategoricalHMM:
    """The casino itself as a fitted-looking CategoricalHMM (to score the rolls)."""
    model = CategoricalHMM(n_components=2, init_params="")
    model.startprob_, model.transmat_ = STARTPROB.copy(), TRANSMAT.copy()
    model.emissionprob_ = np.vstack([FAIR, LOADED])
    return model
