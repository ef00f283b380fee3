"""Non-dominated sorting against brute-force oracles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linas._errors import ConfigError
from linas.pareto import non_dominated_mask, non_dominated_ranks, pareto_front


def dominates_or_duplicate(lat: np.ndarray, acc: np.ndarray, j: int, i: int) -> bool:
    """j beats i: Pareto dominance, or an identical point with a lower index."""
    if lat[j] <= lat[i] and acc[j] >= acc[i] and (lat[j] < lat[i] or acc[j] > acc[i]):
        return True
    return bool(lat[j] == lat[i] and acc[j] == acc[i] and j < i)


def brute_mask(lat: np.ndarray, acc: np.ndarray, alive: np.ndarray | None = None) -> np.ndarray:
    n = lat.shape[0]
    alive = np.ones(n, dtype=bool) if alive is None else alive
    return np.array(
        [
            alive[i]
            and not any(alive[j] and dominates_or_duplicate(lat, acc, j, i) for j in range(n))
            for i in range(n)
        ],
        dtype=bool,
    )


def brute_ranks(lat: np.ndarray, acc: np.ndarray) -> np.ndarray:
    ranks = np.full(lat.shape[0], -1)
    alive = np.ones(lat.shape[0], dtype=bool)
    r = 0
    while alive.any():
        front = brute_mask(lat, acc, alive)
        ranks[front] = r
        alive &= ~front
        r += 1
    return ranks


# small integer grids force many ties and duplicates
points = st.integers(0, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 6), min_size=n, max_size=n),
        st.lists(st.integers(0, 6), min_size=n, max_size=n),
    )
)


@settings(max_examples=200, deadline=None)
@given(points)
def test_mask_matches_brute_force(pts: tuple[list[int], list[int]]) -> None:
    lat, acc = np.array(pts[0], float), np.array(pts[1], float)
    np.testing.assert_array_equal(non_dominated_mask(lat, acc), brute_mask(lat, acc))


@settings(max_examples=200, deadline=None)
@given(points)
def test_ranks_match_peeling(pts: tuple[list[int], list[int]]) -> None:
    lat, acc = np.array(pts[0], float), np.array(pts[1], float)
    ranks = non_dominated_ranks(lat, acc)
    np.testing.assert_array_equal(ranks, brute_ranks(lat, acc))
    np.testing.assert_array_equal(ranks == 0, non_dominated_mask(lat, acc))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(-1e3, 1e3), st.floats(0, 1)), max_size=40))
def test_front_is_sorted_mask(pts: list[tuple[float, float]]) -> None:
    lat = np.array([p[0] for p in pts], float)
    acc = np.array([p[1] for p in pts], float)
    idx = pareto_front(lat, acc)
    np.testing.assert_array_equal(np.sort(idx), np.flatnonzero(non_dominated_mask(lat, acc)))
    assert np.all(np.diff(lat[idx]) > 0) and np.all(np.diff(acc[idx]) > 0)


def test_large_input_matches_lexsort_sweep() -> None:
    rng = np.random.default_rng(0)
    lat = rng.integers(0, 2000, 200_000).astype(float)  # heavy ties
    acc = rng.integers(0, 2000, 200_000).astype(float)
    order = np.lexsort((-acc, lat))
    prev = np.r_[-np.inf, np.maximum.accumulate(acc[order])[:-1]]
    expected = np.zeros(lat.shape[0], dtype=bool)
    expected[order[acc[order] > prev]] = True
    np.testing.assert_array_equal(non_dominated_mask(lat, acc), expected)


def test_known_front_and_ranks() -> None:
    lat = np.array([1.0, 2.0, 3.0, 2.0, 4.0, 1.0])
    acc = np.array([0.1, 0.5, 0.9, 0.4, 0.8, 0.05])
    np.testing.assert_array_equal(pareto_front(lat, acc), [0, 1, 2])
    np.testing.assert_array_equal(non_dominated_ranks(lat, acc), [0, 0, 0, 1, 1, 1])


def test_duplicates_keep_exactly_the_first() -> None:
    lat = np.array([2.0, 1.0, 1.0, 1.0])
    acc = np.array([0.9, 0.5, 0.5, 0.5])
    np.testing.assert_array_equal(non_dominated_mask(lat, acc), [True, True, False, False])
    np.testing.assert_array_equal(non_dominated_ranks(lat, acc), [0, 0, 1, 2])


def test_equal_latency_lower_accuracy_is_dominated() -> None:
    mask = non_dominated_mask(np.array([1.0, 1.0]), np.array([0.3, 0.7]))
    np.testing.assert_array_equal(mask, [False, True])


def test_empty_and_single() -> None:
    assert non_dominated_mask(np.array([]), np.array([])).shape == (0,)
    assert pareto_front(np.array([]), np.array([])).shape == (0,)
    assert non_dominated_ranks(np.array([]), np.array([])).shape == (0,)
    np.testing.assert_array_equal(pareto_front(np.array([5.0]), np.array([0.2])), [0])


def test_bad_inputs_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="equal length"):
        non_dominated_mask(np.zeros(3), np.zeros(2))
    with pytest.raises(ConfigError, match="NaN"):
        pareto_front(np.array([1.0, np.nan]), np.zeros(2))
