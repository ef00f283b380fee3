"""Seeded splits and the in-memory tensor cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from linas._errors import ConfigError, DataError
from linas.data import generate_sealer_dataset, load_dataset, load_tensors, split_indices


def _check_partition(splits: dict[str, np.ndarray], n: int) -> None:
    assert list(splits) == ["train", "arch_val", "test"]
    joined = np.concatenate(list(splits.values()))
    assert np.array_equal(np.sort(joined), np.arange(n))  # disjoint and covering
    assert all(part.size >= 1 and part.dtype == np.int64 for part in splits.values())


def test_default_fractions_sizes() -> None:
    splits = split_indices(100, seed=0)
    _check_partition(splits, 100)
    assert [v.size for v in splits.values()] == [60, 20, 20]


def test_deterministic_by_seed() -> None:
    a, b, c = split_indices(50, seed=3), split_indices(50, seed=3), split_indices(50, seed=4)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(3, 400),
    raw=st.tuples(*[st.floats(0.01, 1.0) for _ in range(3)]),
    seed=st.integers(0, 2**32 - 1),
)
def test_partition_property(n: int, raw: tuple[float, float, float], seed: int) -> None:
    fractions = tuple(x / sum(raw) for x in raw)
    splits = split_indices(n, fractions, seed)
    _check_partition(splits, n)
    sizes = np.array([v.size for v in splits.values()])
    assert np.all(np.abs(sizes - np.array(fractions) * n) < 3)


def test_three_samples_give_one_each() -> None:
    splits = split_indices(3, (0.98, 0.01, 0.01))
    assert [v.size for v in splits.values()] == [1, 1, 1]


@pytest.mark.parametrize("n", [0, 1, 2])
def test_too_few_samples(n: int) -> None:
    with pytest.raises(DataError, match=f"{n} sample"):
        split_indices(n)


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.6, 0.4, 0.0), (0.5, 0.3, 0.3)])
def test_bad_fractions(fractions: tuple[float, ...]) -> None:
    with pytest.raises(ConfigError, match="fractions"):
        split_indices(10, fractions)


def test_load_tensors_stacks_samples(tmp_path: Path) -> None:
    generate_sealer_dataset(tmp_path, 5, (32, 48), seed=0)
    dataset = load_dataset("folder", tmp_path, size=(16, 24))
    images, masks = load_tensors(dataset, np.array([4, 0, 2]))
    assert images.shape == (3, 3, 16, 24) and images.dtype == torch.float32
    assert masks.shape == (3, 16, 24) and masks.dtype == torch.int64
    assert torch.equal(images[1], dataset[0][0]) and torch.equal(masks[0], dataset[4][1])
    with pytest.raises(DataError, match="no indices"):
        load_tensors(dataset, [])
