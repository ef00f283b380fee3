"""Candidate samplers and diverse subsets: seeded, unique, in range, stratified."""

from __future__ import annotations

import numpy as np
import pytest

from linas._errors import ConfigError
from linas.latency import LUT, LUTLatencyModel
from linas.pareto import (
    SAMPLERS,
    SPACE_SIZE,
    baseline_eval_subset,
    diverse_subset,
    get_sampler,
    mixed_candidates,
    sample,
    sample_logit,
    sample_random,
    sample_stratified,
)
from linas.space import choices_to_ids


@pytest.fixture(scope="module")
def tables() -> list[np.ndarray]:
    """Exhaustive latencies of two synthetic devices (one 4x slower, different shape)."""
    rng = np.random.default_rng(7)
    out = []
    for scale in (1.0, 4.0):
        mean = rng.uniform(0.1, 3.0, size=(5, 21)) * scale
        lut = LUT(hardware=f"dev{scale}", input_size=(128, 128), mean_ms=mean, std_ms=mean * 0.01)
        out.append(LUTLatencyModel(lut).exhaustive())
    return out


@pytest.fixture(scope="module")
def logits() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(5, 21))


def check_unique_in_range(choices: np.ndarray, n: int) -> None:
    assert choices.shape == (n, 5)
    assert choices.min() >= 0 and choices.max() <= 20
    assert np.unique(choices_to_ids(choices)).shape[0] == n


@pytest.mark.parametrize("name", ["random", "logit", "stratified"])
def test_samplers_are_seeded_unique_in_range(
    name: str, tables: list[np.ndarray], logits: np.ndarray
) -> None:
    kwargs = {"logit": {"logits": logits}, "stratified": {"latency_tables": tables}}.get(name, {})
    a = sample(name, 300, 11, **kwargs)
    check_unique_in_range(a, 300)
    np.testing.assert_array_equal(a, sample(name, 300, 11, **kwargs))
    assert not np.array_equal(a, sample(name, 300, 12, **kwargs))


def test_registry_menu() -> None:
    assert set(SAMPLERS) >= {"random", "logit", "stratified"}
    assert get_sampler("random") is sample_random
    with pytest.raises(ConfigError, match="did you mean 'logit'.*valid: logit, random"):
        get_sampler("logits")


def test_exclude_is_respected() -> None:
    first = sample_random(500, 0)
    second = sample_random(500, 0, exclude=choices_to_ids(first))
    assert not np.isin(choices_to_ids(second), choices_to_ids(first)).any()


def test_random_covers_every_choice() -> None:
    choices = sample_random(2000, 5)
    for layer in range(5):
        assert np.unique(choices[:, layer]).shape[0] == 21


def test_peaked_logit_picks_that_choice() -> None:
    logits = np.zeros((5, 21))
    logits[2, 7] = 12.0  # p(choice 7 at layer 2) ~ 0.9999; other layers uniform
    choices = sample_logit(300, 0, logits)
    assert np.mean(choices[:, 2] == 7) >= 0.99
    assert np.unique(choices[:, 0]).shape[0] > 15
    # a high temperature flattens the same logits back towards uniform
    flat = sample_logit(300, 0, logits, temperature=1e3)
    assert np.mean(flat[:, 2] == 7) < 0.2


def test_too_peaked_logits_raise() -> None:
    logits = np.zeros((5, 21))
    logits[:, 0] = 60.0  # one architecture holds essentially all the mass
    with pytest.raises(ConfigError, match="raise temperature"):
        sample_logit(5, 0, logits)
    with pytest.raises(ConfigError, match="shape"):
        sample_logit(5, 0, np.zeros((5, 20)))


def test_stratified_fills_every_quantile_bin_equally() -> None:
    table = np.random.default_rng(0).permutation(SPACE_SIZE).astype(np.float64)  # distinct
    choices = sample_stratified(100, 4, table, bins=10)
    ranks = table[choices_to_ids(choices)]  # the value is its rank here
    counts = np.bincount((ranks * 10 // SPACE_SIZE).astype(int), minlength=10)
    np.testing.assert_array_equal(counts, np.full(10, 10))


def test_stratified_several_devices_cover_both(tables: list[np.ndarray]) -> None:
    choices = sample_stratified(200, 1, tables, bins=10)
    ids = choices_to_ids(choices)
    for table in tables:
        edges = np.quantile(table, np.linspace(0, 1, 11))
        counts = np.histogram(table[ids], bins=edges)[0]
        assert counts.min() >= 8  # >= its own 10 per bin, less ties at the edges
    # uniform sampling would almost never reach the fastest decile this often
    fast = np.quantile(tables[0], 0.1)
    uniform = sample_random(200, 1)
    assert (tables[0][ids] <= fast).sum() > (tables[0][choices_to_ids(uniform)] <= fast).sum()


def test_stratified_bad_tables() -> None:
    with pytest.raises(ConfigError, match="shape"):
        sample_stratified(10, 0, [np.zeros(100)])
    with pytest.raises(ConfigError, match="bins"):
        sample_stratified(10, 0, np.zeros(SPACE_SIZE), bins=0)


def test_mixed_candidates(tables: list[np.ndarray], logits: np.ndarray) -> None:
    a = mixed_candidates(1000, 3, logits, tables)
    check_unique_in_range(a, 1000)
    np.testing.assert_array_equal(a, mixed_candidates(1000, 3, logits, tables))
    b = mixed_candidates(7, 3, None, {"d0": tables[0]}, shares=(1, 1, 1))
    check_unique_in_range(b, 7)
    with pytest.raises(ConfigError, match="shares"):
        mixed_candidates(10, 0, logits, tables, shares=(1.0, -1.0, 1.0))


def test_diverse_subset_farthest_point_order() -> None:
    choices = np.zeros((11, 5), dtype=int)  # identical choices: objectives decide
    objectives = np.arange(11.0)
    np.testing.assert_array_equal(
        diverse_subset(choices, objectives, 3, 0, must_include=[0]), [0, 10, 5]
    )


def test_diverse_subset_deterministic_unique_with_duplicates() -> None:
    rng = np.random.default_rng(0)
    choices = np.repeat(rng.integers(0, 21, (50, 5)), 2, axis=0)  # every row twice
    objectives = np.repeat(rng.random((50, 2)), 2, axis=0)
    a = diverse_subset(choices, objectives, 100, seed=4)
    np.testing.assert_array_equal(np.sort(a), np.arange(100))
    np.testing.assert_array_equal(a, diverse_subset(choices, objectives, 100, seed=4))
    # the first 50 picks are all distinct architectures: duplicates sit at distance 0
    assert np.unique(choices_to_ids(choices[a[:50]])).shape[0] == 50
    with pytest.raises(ConfigError, match="k="):
        diverse_subset(choices, None, 101, 0)


def test_baseline_subset_includes_every_fastest(
    tables: list[np.ndarray], logits: np.ndarray
) -> None:
    cands = mixed_candidates(1000, 0, logits, tables)
    lat = np.stack([t[choices_to_ids(cands)] for t in tables], axis=1)  # (1000, 2)
    pick = baseline_eval_subset(cands, lat, 100, 0)
    assert pick.shape == (100,) and np.unique(pick).shape[0] == 100
    assert set(np.argmin(lat, axis=0).tolist()) <= set(pick[:2].tolist())
    # the pick spans each device's latency range far better than a random 100
    for d in range(2):
        assert lat[pick, d].max() >= np.quantile(lat[:, d], 0.99)
