"""The two-coin example of Do and Batzoglou (2008), step by step.

Two coins A and B with unknown biases; five sets of ten tosses, each set made
with one coin. With the coins known, each bias is heads over flips. With the
coins hidden, EM credits every set to both coins in proportion to how likely
each coin makes it (E-step), then takes credited heads over credited flips
(M-step). Starting from 0.6 and 0.5, with the prior fixed at one half, one
iteration gives about 0.71 and 0.58 and ten give about 0.80 and 0.52.

The numbers come from emkit's own mixture: Binomial components, the E-step
of :class:`emkit.latent.mixture.Mixture`, and the Binomial M-step.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from emkit.datasets import CoinTosses, load_coins
from emkit.distributions import Binomial
from emkit.distributions.component_list import ComponentList
from emkit.latent.mixture import Mixture

START = (0.6, 0.5)
NAMES = ("A", "B")


def coin_mixture(n_tosses: int, biases: tuple[float, float] = START) -> Mixture:
    """Two Binomial coins with the prior fixed at one half."""
    coins = ComponentList(tuple(Binomial(n_tosses, p) for p in biases))
    return Mixture(weights=np.array([0.5, 0.5]), components=coins, fit_weights=False)


def biases(coins: ComponentList) -> tuple[float, ...]:
    """The coins' biases, in order A, B."""
    return tuple(d.p for d in coins.distributions)


def credit_table(data: CoinTosses, resp: np.ndarray) -> list[str]:
    """One line per set: its weight on each coin and the heads and tails credited to each."""
    heads = data.heads[:, None] * resp
    tails = (data.n_tosses - data.heads)[:, None] * resp
    lines = [
        "  set  tosses      heads   P(A)  P(B)   A: heads tails   B: heads tails",
    ]
    for i, tosses in enumerate(data.tosses):
        lines.append(
            f"  {i + 1:>3}  {tosses}  {data.heads[i]:>5}   {resp[i, 0]:.2f}  {resp[i, 1]:.2f}"
            f"   {heads[i, 0]:>8.1f} {tails[i, 0]:>5.1f}   {heads[i, 1]:>8.1f} {tails[i, 1]:>5.1f}"
        )
    lines.append(
        f"  {'total':>41}   {heads[:, 0].sum():>8.1f} {tails[:, 0].sum():>5.1f}"
        f"   {heads[:, 1].sum():>8.1f} {tails[:, 1].sum():>5.1f}"
    )
    return lines


def m_step_line(data: CoinTosses, resp: np.ndarray, new: tuple[float, ...]) -> str:
    """The M-step as arithmetic: credited heads over credited flips, per coin."""
    heads = data.heads @ resp
    flips = data.n_tosses * resp.sum(axis=0)
    parts = [
        f"theta_{name} = {h:.1f} / {f:.1f} = {p:.2f}"
        for name, h, f, p in zip(NAMES, heads, flips, new, strict=True)
    ]
    return "  M-step: " + ",  ".join(parts)


def hidden_labels(data: CoinTosses, n_iter: int, echo: Callable[[str], None]) -> tuple:
    """EM with the coins hidden, printing every iteration; returns the final biases."""
    mixture = coin_mixture(data.n_tosses)
    echo(f"Labels hidden: EM from theta_A = {START[0]}, theta_B = {START[1]}, prior 0.5.")
    for iteration in range(1, n_iter + 1):
        resp = np.exp(mixture.log_resp(data.X)[0])
        mixture = mixture.m_step(mixture.e_step(data.X))
        echo("")
        echo(f"Iteration {iteration}, E-step: how likely each coin made each set")
        for line in credit_table(data, resp):
            echo(line)
        echo(m_step_line(data, resp, biases(mixture.components)))
    return biases(mixture.components)


def known_labels(data: CoinTosses, echo: Callable[[str], None]) -> tuple:
    """Complete data: each set credited wholly to its coin (the same M-step, 0/1 weights)."""
    resp = np.array([[c == name for name in NAMES] for c in data.coins], dtype=np.float64)
    mixture = coin_mixture(data.n_tosses)
    stats = mixture.components.stats(data.X, resp)
    known = biases(mixture.components.from_stats(stats))
    echo("")
    echo(f"Labels known (complete data): coins {', '.join(data.coins)}; heads over flips")
    for line in credit_table(data, resp):
        echo(line)
    echo(m_step_line(data, resp, known))
    return known


def run(echo: Callable[[str], None] = print, n_iter: int = 10) -> dict[str, tuple]:
    """Print the coin example: EM iterations, the complete-data answer, both side by side.

    Parameters
    ----------
    echo : callable, default=print
        Receives each line of output (one call per line, no newlines inside).
    n_iter : int, default=10
        EM iterations to run.

    Returns
    -------
    dict
        ``{"hidden": (theta_A, theta_B), "known": (theta_A, theta_B)}``.
    """
    data = load_coins()
    echo("Two coins A and B, biases unknown (Do & Batzoglou 2008): "
         f"{len(data.tosses)} sets of {data.n_tosses} tosses, each set with one coin.")
    echo("")
    hidden = hidden_labels(data, n_iter, echo)
    known = known_labels(data, echo)
    echo("")
    echo("Side by side")
    echo(f"  {'':8}  labels hidden (EM, {n_iter} iterations)   labels known")
    for name, h, k in zip(NAMES, hidden, known, strict=True):
        echo(f"  theta_{name}   {h:>30.2f}   {k:>12.2f}")
    return {"hidden": hidden, "known": known}


if __name__ == "__main__":
    run()
