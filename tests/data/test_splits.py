"""Seeded splits and the in-memory tensor cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from linas._errors import ConfigError, DataError
from linas.data import (
    SPLIT_NAMES,
    SegmentationDataset,
    generate_sealer_dataset,
    load_dataset,
    load_tensors,
    make_splits,
    split_indices,
)


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
    assert masks.shape == (3, 16, 24) and masks.dtype == torch.uint8  # labels fit: 1/8 memory
    assert torch.equal(images[1], dataset[0][0]) and torch.equal(masks[0].long(), dataset[4][1])
    with pytest.raises(DataError, match="no indices"):
        load_tensors(dataset, [])


# --- make_splits: layout test sets and strata ---------------------------------------------


def _toy(n: int, test: list[int] | None = None, strata: list[str] | None = None):
    pairs = [(Path(f"/nowhere/{i}.png"), None) for i in range(n)]
    return SegmentationDataset(pairs, ["bg"], test_indices=test, strata=strata, name="toy")


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return all(np.array_equal(a[k], b[k]) for k in SPLIT_NAMES)


def test_make_splits_without_layout_equals_split_indices() -> None:
    assert _same(make_splits(_toy(40), seed=5), split_indices(40, seed=5))


def test_layout_test_set_is_the_test_split() -> None:
    test = [3, 7, 8, 20, 21]
    dataset = _toy(25, test=test)
    splits = make_splits(dataset, (0.6, 0.2, 0.2), seed=0)
    _check_partition(splits, 25)
    assert splits["test"].tolist() == test
    # the other 20 samples split 60:20, i.e. 15 / 5
    assert (splits["train"].size, splits["arch_val"].size) == (15, 5)
    assert _same(splits, make_splits(dataset, seed=0))
    assert not _same(splits, make_splits(dataset, seed=1))
    assert make_splits(dataset, seed=1)["test"].tolist() == test


def test_layout_test_set_leaves_too_few() -> None:
    with pytest.raises(DataError, match="toy: 1 sample.*outside its layout's test set"):
        make_splits(_toy(4, test=[0, 1, 2]))


def _strata(n_good: int, defects: dict[str, int]) -> list[str]:
    labels = ["good"] * n_good + [k for k, m in defects.items() for _ in range(m)]
    return list(np.random.default_rng(0).permutation(labels))


def test_strata_land_in_every_split() -> None:
    strata = _strata(40, {"crack": 3, "hole": 5})  # the rare defects are the hard case
    dataset = _toy(len(strata), strata=strata)
    for seed in range(20):
        splits = make_splits(dataset, (0.7, 0.2, 0.1), seed)
        _check_partition(splits, len(strata))
        assert [v.size for v in splits.values()] == [33, 10, 5]  # as split_indices: exact
        for name, part in splits.items():
            present = {strata[i] for i in part}
            assert present == {"good", "crack", "hole"}, (seed, name, present)


def test_strata_are_deterministic_by_seed() -> None:
    dataset = _toy(30, strata=_strata(18, {"gap": 6, "spill": 6}))
    a, b, c = (
        make_splits(dataset, seed=2),
        make_splits(dataset, seed=2),
        make_splits(dataset, seed=3),
    )
    assert _same(a, b) and not _same(a, c)


def test_strata_with_a_layout_test_set() -> None:
    strata = _strata(20, {"gap": 6})
    dataset = _toy(26, test=[0, 1, 2, 3], strata=strata)
    splits = make_splits(dataset, seed=0)
    assert splits["test"].tolist() == [0, 1, 2, 3]
    for name in ("train", "arch_val"):
        assert {strata[i] for i in splits[name]} == {"good", "gap"}


@settings(max_examples=150, deadline=None)
@given(
    counts=st.lists(st.integers(1, 40), min_size=1, max_size=5),
    raw=st.tuples(*[st.floats(0.05, 1.0) for _ in range(3)]),
    seed=st.integers(0, 2**32 - 1),
)
def test_stratified_partition_property(
    counts: list[int], raw: tuple[float, float, float], seed: int
) -> None:
    strata = [f"s{k}" for k, m in enumerate(counts) for _ in range(m)]
    n = len(strata)
    if n < 3:
        return
    fractions = tuple(x / sum(raw) for x in raw)
    splits = make_splits(_toy(n, strata=strata), fractions, seed)
    _check_partition(splits, n)
    # totals are exactly those of the unstratified split
    assert [v.size for v in splits.values()] == [
        v.size for v in split_indices(n, fractions).values()
    ]
    for k, m in enumerate(counts):  # each stratum gets about its share of every split
        members = np.array([s == f"s{k}" for s in strata])
        got = np.array([members[v].sum() for v in splits.values()])
        assert np.all(np.abs(got - np.array(fractions) * m) < 3 + 0.1 * m), (k, got)


# --- layouts that carry a test set --------------------------------------------------------


def test_folder_splits_json_fixes_the_test_split(tmp_path: Path) -> None:
    generate_sealer_dataset(tmp_path, 10, (32, 32), seed=0)
    (tmp_path / "splits.json").write_text(json.dumps({"test": ["00009", "00002"]}))
    dataset = load_dataset("folder", tmp_path)
    assert dataset.test_indices is not None and dataset.test_indices.tolist() == [2, 9]
    splits = make_splits(dataset, seed=4)
    assert splits["test"].tolist() == [2, 9]
    assert (splits["train"].size, splits["arch_val"].size) == (6, 2)


@pytest.mark.parametrize(
    "content, match",
    [
        ({"test": ["00001", "nope"]}, "1 test stem.*no image in images/: nope"),
        ({"val": ["00001"]}, r"expected \{\"test\""),
        ({"test": "00001"}, r"expected \{\"test\""),
        ({"test": []}, '"test" is empty'),
    ],
)
def test_bad_splits_json(tmp_path: Path, content: dict, match: str) -> None:
    generate_sealer_dataset(tmp_path, 3, (32, 32), seed=0)
    (tmp_path / "splits.json").write_text(json.dumps(content))
    with pytest.raises(DataError, match=rf"splits file .*splits\.json: {match}"):
        load_dataset("folder", tmp_path)


def test_cityscapes_val_is_the_test_split(tmp_path: Path) -> None:
    for split, frames in [("train", 5), ("val", 2)]:
        for i in range(frames):
            stem = f"aachen_{split}_{i:06d}"
            folder = tmp_path / "leftImg8bit" / split / "aachen"
            labels = tmp_path / "gtFine" / split / "aachen"
            folder.mkdir(parents=True, exist_ok=True)
            labels.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (4, 2)).save(folder / f"{stem}_leftImg8bit.png")
            Image.new("L", (4, 2), 7).save(labels / f"{stem}_gtFine_labelIds.png")
    dataset = load_dataset("cityscapes", tmp_path)  # split "train+val" by default
    assert len(dataset) == 7
    val = [i for i, (image, _) in enumerate(dataset.pairs) if "_val_" in image.name]
    assert dataset.test_indices is not None and dataset.test_indices.tolist() == val
    assert make_splits(dataset, seed=0)["test"].tolist() == val
    assert load_dataset("cityscapes", tmp_path, split="train").test_indices is None
    with pytest.raises(ConfigError, match="twice"):
        load_dataset("cityscapes", tmp_path, split="train+train")
