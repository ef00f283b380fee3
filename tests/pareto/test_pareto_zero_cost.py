"""I3 pre-filter and selection (pure numpy): every non-dominated point survives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linas._errors import ConfigError
from linas.pareto import non_dominated_mask, prefilter, select_zero_cost, zero_cost_pick
from linas.pareto.sampling import sample_random


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.integers(1, 3), st.integers(1, 30), st.integers(0, 10_000))
def test_prefilter_keeps_every_non_dominated_point(n: int, d: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    lat = rng.integers(0, 6, size=(n, d)).astype(float)  # ties on purpose
    score = rng.integers(0, 6, size=n).astype(float)
    keep = set(prefilter(lat, score, k).tolist())
    for dev in range(d):
        front = np.flatnonzero(non_dominated_mask(lat[:, dev], score))
        assert set(front.tolist()) <= keep
    assert len(keep) >= min(k, n)


def test_prefilter_fills_whole_ranks_first() -> None:
    # one device: points on three nested staircases (ranks 0, 1, 2)
    lat = np.array([[1.0], [2.0], [3.0], [2.0], [3.0], [4.0], [3.0], [4.0], [5.0]])
    score = np.array([1.0, 2.0, 3.0, 0.5, 1.5, 2.5, 0.2, 1.2, 2.2])
    assert prefilter(lat, score, 3).tolist() == [0, 1, 2]
    assert prefilter(lat, score, 6).tolist() == [0, 1, 2, 3, 4, 5]
    kept = prefilter(lat, score, 4).tolist()  # rank 1 cut by score: the 2.5 one
    assert kept == [0, 1, 2, 5]
    assert prefilter(lat, score, 2).tolist() == [0, 1, 2]  # rank 0 is never cut
    with pytest.raises(ConfigError, match="k=0"):
        prefilter(lat, score, 0)


def test_selection_starts_from_each_device_fastest_and_is_seeded() -> None:
    choices = sample_random(300, seed=1)
    rng = np.random.default_rng(1)
    lat, score = rng.random((300, 2)), rng.random(300)
    pick = select_zero_cost(choices, score, lat, n_prefilter=60, n_evaluate=20, seed=0)
    assert pick.order.shape == (20,) and len(set(pick.order.tolist())) == 20
    assert set(pick.order.tolist()) <= set(pick.prefiltered.tolist())
    kept = pick.prefiltered
    fastest = {int(kept[np.argmin(lat[kept, d])]) for d in range(2)}
    assert fastest <= set(pick.order[:2].tolist())
    again = select_zero_cost(choices, score, lat, n_prefilter=60, n_evaluate=20, seed=0)
    assert np.array_equal(pick.order, again.order)


def test_zero_cost_pick_end_to_end_with_a_toy_proxy() -> None:
    def score(c: np.ndarray) -> np.ndarray:
        return c.sum(axis=1).astype(float)

    def latencies(c: np.ndarray) -> np.ndarray:
        return np.stack([c[:, 0] + 1.0, c[:, 4] + 2.0], axis=1)

    pick = zero_cost_pick(score, latencies, n_sample=500, n_prefilter=50, n_evaluate=10, seed=3)
    assert pick.picked.shape == (10, 5)
    with pytest.raises(ConfigError, match="n_evaluate"):
        zero_cost_pick(score, latencies, n_sample=10, n_prefilter=50, n_evaluate=10, seed=3)
