"""The two-coin data of Do and Batzoglou (2008), "What is the expectation maximization
algorithm?", Nature Biotechnology 26(8), Figure 1."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Figure 1a: five sets of ten tosses, each set made with one coin, B A A B A.
_TOSSES = (
    "HTTTHHTHTH",
    "HHHHTHHHHH",
    "HTHHHHHTHH",
    "HTHTTTHHTT",
    "THHHTHHHTH",
)
_COINS = ("B", "A", "A", "B", "A")


@dataclass(frozen=True)
class CoinTosses:
    """Five sets of ten coin tosses and which coin made each set.

    Attributes
    ----------
    tosses : tuple of str
        Each set as a string of ``H`` and ``T``.
    coins : tuple of str
        The coin (``"A"`` or ``"B"``) behind each set: the labels EM does not see.
    """

    tosses: tuple[str, ...]
    coins: tuple[str, ...]

    @property
    def heads(self) -> np.ndarray:
        """Heads per set, shape (5,): 5, 9, 8, 4, 7."""
        return np.array([t.count("H") for t in self.tosses])

    @property
    def n_tosses(self) -> int:
        """Tosses per set (10)."""
        return len(self.tosses[0])

    @property
    def X(self) -> np.ndarray:
        """Heads as a one-column data matrix, shape (5, 1), for a Binomial mixture."""
        return self.heads[:, None].astype(np.float64)


def load_coins() -> CoinTosses:
    """The two-coin example of Do and Batzoglou (2008).

    Returns
    -------
    CoinTosses
        ``heads`` 5, 9, 8, 4, 7 out of ``n_tosses`` 10, with coins B, A, A, B, A.

    Examples
    --------
    >>> from emkit.datasets import load_coins
    >>> coins = load_coins()
    >>> coins.heads.tolist(), coins.n_tosses, coins.coins
    ([5, 9, 8, 4, 7], 10, ('B', 'A', 'A', 'B', 'A'))
    """
    return CoinTosses(tosses=_TOSSES, coins=_COINS)
