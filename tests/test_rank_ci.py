"""Rank correlation and its bootstrap interval: closed-form answers and seeded behaviour."""

import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr

from linas.metrics_rank import bootstrap_ci, kendall_tau, spearman_rho


def _correlated(n: int, seed: int, noise: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return x, x + noise * rng.normal(size=n)


def test_statistics_match_scipy_and_hand_values():
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)  # 5 C, 1 D of 6
    assert spearman_rho([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    x, y = _correlated(30, 1)
    assert kendall_tau(x, y) == pytest.approx(kendalltau(x, y).statistic)
    assert spearman_rho(x, y) == pytest.approx(spearmanr(x, y).statistic)


def test_degenerate_input_is_nan_and_bad_input_raises():
    assert np.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))
    assert np.isnan(spearman_rho([1, 2, 3], [5, 5, 5]))
    assert np.isnan(kendall_tau([1.0], [2.0]))
    with pytest.raises(ValueError, match="one length"):
        kendall_tau([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="NaN or inf"):
        spearman_rho([1, np.nan], [1, 2])
    with pytest.raises(ValueError, match="level = 1.5"):
        bootstrap_ci([1, 2, 3], [1, 2, 3], level=1.5)
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap_ci([1.0], [1.0])


@pytest.mark.parametrize("stat", [kendall_tau, spearman_rho])
def test_monotone_data_gives_one_and_interval_one_one(stat):
    x = np.arange(12, dtype=float)
    ci = bootstrap_ci(x, np.exp(x), stat, n_boot=500)
    assert ci.estimate == pytest.approx(1.0)
    assert ci.low == pytest.approx(1.0) and ci.high == pytest.approx(1.0)


def test_independent_data_interval_contains_zero_and_is_narrow():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=400), rng.normal(size=400)
    ci = bootstrap_ci(x, y, kendall_tau)
    assert ci.contains(0.0)
    assert 0.0 < ci.width < 0.2  # SE of tau at n = 400 is ~0.034, so the width is ~0.13
    assert ci.n_boot == 2000 and ci.n_skipped == 0 and ci.level == 0.95


def test_fewer_architectures_give_a_wider_interval():
    small = bootstrap_ci(*_correlated(10, 5), kendall_tau, n_boot=1000)
    large = bootstrap_ci(*_correlated(100, 5), kendall_tau, n_boot=1000)
    assert small.estimate > 0.4 and large.estimate > 0.4
    assert small.width > large.width


def test_same_seed_same_interval_other_seed_another():
    x, y = _correlated(20, 7)
    a = bootstrap_ci(x, y, spearman_rho, n_boot=500, seed=1)
    b = bootstrap_ci(x, y, spearman_rho, n_boot=500, seed=1)
    c = bootstrap_ci(x, y, spearman_rho, n_boot=500, seed=2)
    assert (a.low, a.high) == (b.low, b.high)
    assert (a.low, a.high) != (c.low, c.high)
    assert a.estimate == c.estimate  # the estimate is of the sample, not the resamples


def test_degenerate_resamples_are_skipped_and_counted():
    # 3 of 4 x values equal: a resample of only those (or only the odd one) is constant
    x, y = np.array([0.0, 0.0, 0.0, 1.0]), np.array([0.0, 1.0, 2.0, 3.0])
    ci = bootstrap_ci(x, y, kendall_tau, n_boot=2000, seed=0)
    # P(constant x) = P(all four draws from the three zeros) + P(all the one) = (3/4)^4 + (1/4)^4
    expected = 2000 * (0.75 ** 4 + 0.25 ** 4)
    assert abs(ci.n_skipped - expected) < 4 * np.sqrt(expected)
    assert np.isfinite(ci.low) and np.isfinite(ci.high)
