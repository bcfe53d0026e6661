"""Small data sets shipped with emkit."""

from emkit.datasets._coins import CoinTosses, load_coins

__all__ = ["CoinTosses", "load_coins"]
