"""The two-coin example as taught (Do & Batzoglou 2008, Figure 1).

Expected values: the paper's rounded numbers (iteration 1: 0.71 and 0.58;
iteration 10: 0.80 and 0.52; labels known: 24/30 = 0.80 and 9/20 = 0.45), and a
separate four-line EM written here with scipy.stats.binom as the exact oracle.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from emkit import MixtureModel
from emkit.datasets import load_coins
from emkit.demos import coins as demo
from emkit.distributions import Binomial

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

HEADS = np.array([5, 9, 8, 4, 7])


def reference_em(n_iter: int, theta=(0.6, 0.5)) -> tuple[float, float]:
    """Textbook EM for two coins with prior 1/2, independent of emkit."""
    theta_a, theta_b = theta
    for _ in range(n_iter):
        like_a, like_b = binom.pmf(HEADS, 10, theta_a), binom.pmf(HEADS, 10, theta_b)
        resp_a = like_a / (like_a + like_b)
        resp_b = 1 - resp_a
        theta_a = resp_a @ HEADS / (10 * resp_a.sum())
        theta_b = resp_b @ HEADS / (10 * resp_b.sum())
    return theta_a, theta_b


def fit_coins(n_iter: int) -> list[float]:
    model = MixtureModel(
        [Binomial(10, 0.6), Binomial(10, 0.5)], fit_weights=False, tol=0, max_iter=n_iter
    )
    model.fit(load_coins().X)
    np.testing.assert_array_equal(model.weights_, [0.5, 0.5])
    return [c.p for c in model.components_]


def test_coin_data():
    data = load_coins()
    assert data.heads.tolist() == [5, 9, 8, 4, 7]
    assert data.n_tosses == 10
    assert data.coins == ("B", "A", "A", "B", "A")
    assert data.X.shape == (5, 1)


@pytest.mark.parametrize(("n_iter", "paper"), [(1, (0.71, 0.58)), (10, (0.80, 0.52))])
def test_em_matches_the_paper(n_iter, paper):
    biases = fit_coins(n_iter)
    np.testing.assert_allclose(biases, reference_em(n_iter), rtol=1e-12)
    assert [round(p, 2) for p in biases] == list(paper)


def test_likelihood_increases_every_iteration():
    model = MixtureModel([Binomial(10, 0.6), Binomial(10, 0.5)], fit_weights=False,
                         tol=0, max_iter=10).fit(load_coins().X)
    assert np.all(np.diff(model.history_) > 0)


def test_complete_data_answer_is_heads_over_flips():
    data = load_coins()
    coin_a = np.array([c == "A" for c in data.coins])
    assert Binomial(10, 0.5).fit(data.X[coin_a]).p == pytest.approx(24 / 30, rel=1e-14)
    assert Binomial(10, 0.5).fit(data.X[~coin_a]).p == pytest.approx(9 / 20, rel=1e-14)


def test_demo_prints_the_tables_and_both_answers():
    lines: list[str] = []
    answer = demo.run(echo=lines.append)
    text = "\n".join(lines)
    np.testing.assert_allclose(answer["hidden"], reference_em(10), rtol=1e-12)
    np.testing.assert_allclose(answer["known"], (0.8, 0.45), rtol=1e-14)
    assert "Iteration 1, E-step" in text and "Iteration 10, E-step" in text
    # Figure 1b, first set: P(A) 0.45, P(B) 0.55, about 2.2 heads and tails credited to A.
    first_row = next(line for line in lines if "HTTTHHTHTH" in line)
    assert first_row.split()[3:8] == ["0.45", "0.55", "2.2", "2.2", "2.8"]
    assert "theta_A = 21.3 / 29.9 = 0.71,  theta_B = 11.7 / 20.1 = 0.58" in text
    assert "theta_A = 24.0 / 30.0 = 0.80,  theta_B = 9.0 / 20.0 = 0.45" in text
    side_by_side = lines[lines.index("Side by side") + 2 :]
    assert [line.split() for line in side_by_side] == [
        ["theta_A", "0.80", "0.80"], ["theta_B", "0.52", "0.45"],
    ]
