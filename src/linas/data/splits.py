"""Seeded train / architecture-validation / test splits, and in-memory tensor caches.

:func:`make_splits` is what a run calls: it honours a layout's own test set and spreads a
dataset's strata (e.g. MVTec good / defect types) over every split; :func:`split_indices` is
the plain seeded shuffle it falls back to.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from linas._errors import ConfigError, DataError
from linas.data.datasets import SegmentationDataset

SPLIT_NAMES = ("train", "arch_val", "test")


def make_splits(
    dataset: SegmentationDataset, fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0
) -> dict[str, np.ndarray]:
    """Split a dataset into train / arch_val / test, fixed by ``seed``.

    - When the layout defines a test set (``dataset.test_indices``: Cityscapes ``val`` in
      ``train+val``, a folder's ``splits.json``), that set is the test split, and train /
      arch_val are drawn from the other samples in the ratio ``fractions[0] : fractions[1]``.
    - Otherwise all three are drawn by ``fractions`` (largest-remainder sizes, each >= 1).
    - When the dataset has ``strata`` (MVTec: ``good`` or the defect type), every stratum is
      spread over the drawn splits in proportion, and each stratum with at least one sample
      per split gets at least one in each, so defect images land in every split. Without
      strata and a layout test set the result equals :func:`split_indices`.

    Args:
        dataset: a loaded dataset.
        fractions: three positive shares (train, arch_val, test) summing to 1.
        seed: the split seed; the same dataset and seed always give the same splits.

    Returns:
        ``{"train", "arch_val", "test"}`` -> sorted, disjoint int64 index arrays covering
        ``range(len(dataset))``.

    Raises:
        ConfigError: bad ``fractions``.
        DataError: too few samples for three non-empty splits.
    """
    shares = _check_fractions(fractions)
    n = len(dataset)
    strata = None if dataset.strata is None else np.asarray(dataset.strata, dtype=str)
    rng = np.random.default_rng(seed)
    if dataset.test_indices is None:
        if strata is None:
            return split_indices(n, fractions, seed)
        _check_count(n, dataset.name)
        parts = _stratified(np.arange(n), strata, _split_sizes(n, shares), rng)
        return _named(parts)
    test = dataset.test_indices
    rest = np.setdiff1d(np.arange(n), test)
    if rest.size < 2:
        raise DataError(
            f"{dataset.name}: {rest.size} sample(s) outside its layout's test set; train and "
            "arch_val need at least 2; add samples or shrink the layout's test set"
        )
    sizes = _split_sizes(rest.size, shares[:2] / shares[:2].sum())
    if strata is None:
        parts = np.split(rest[rng.permutation(rest.size)], np.cumsum(sizes)[:-1])
    else:
        parts = _stratified(rest, strata[rest], sizes, rng)
    return _named([*parts, test])


def _check_count(n: int, name: str = "dataset") -> None:
    if n < len(SPLIT_NAMES):
        raise DataError(
            f"{name} has {n} sample(s); train/arch_val/test splits need at least 3; add samples"
        )


def _named(parts: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    return {
        name: np.sort(np.asarray(part)).astype(np.int64)
        for name, part in zip(SPLIT_NAMES, parts, strict=True)
    }


def _stratified(
    ids: np.ndarray, strata: np.ndarray, sizes: np.ndarray, rng: np.random.Generator
) -> list[np.ndarray]:
    """Cut ``ids`` into parts of exactly ``sizes`` with every stratum spread proportionally.

    First each stratum, rarest first, seeds every part with one random member while every
    part has room; then the remaining members are laid out at evenly spaced positions in
    [0, 1) per stratum (a random phase each), merged in position order and cut by the
    remaining sizes, so each part takes about its share of every stratum.
    """
    left = np.array(sizes, dtype=np.int64)
    seeded: list[list[int]] = [[] for _ in left]
    pool: list[np.ndarray] = []
    keys: list[np.ndarray] = []
    groups = sorted((ids[strata == label] for label in np.unique(strata)), key=len)
    for group in groups:
        group = group[rng.permutation(group.size)]
        if group.size >= left.size and np.all(left >= 1):
            for part, index in zip(seeded, group, strict=False):
                part.append(int(index))
            left -= 1
            group = group[left.size :]
        pool.append(group)
        keys.append((np.arange(group.size) + rng.random()) / max(group.size, 1))
    members, positions = np.concatenate(pool), np.concatenate(keys)
    order = np.lexsort((rng.random(members.size), positions))  # ties broken at random
    cut = np.split(members[order], np.cumsum(left)[:-1])
    return [
        np.concatenate([np.asarray(s, dtype=np.int64), c]) for s, c in zip(seeded, cut, strict=True)
    ]


def split_indices(
    n: int, fractions: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0
) -> dict[str, np.ndarray]:
    """Split ``range(n)`` into disjoint train / arch_val / test index sets by a seeded shuffle.

    Sizes follow ``fractions`` (largest-remainder rounding), and every split gets at least one
    index, so small datasets still yield all three.

    Args:
        n: number of samples, at least 3.
        fractions: three positive shares for train, arch_val and test, summing to 1.
        seed: shuffle seed; the same ``(n, fractions, seed)`` always gives the same splits.

    Returns:
        ``{"train", "arch_val", "test"}`` -> sorted int64 index arrays that cover ``range(n)``.

    Raises:
        DataError: ``n < 3``.
        ConfigError: ``fractions`` is not three positive numbers summing to 1.
    """
    shares = _check_fractions(fractions)
    _check_count(n)
    order = np.random.default_rng(seed).permutation(n)
    bounds = np.cumsum(_split_sizes(n, shares))[:-1]
    return _named(np.split(order, bounds))


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    shares = np.asarray(fractions, dtype=np.float64)
    if shares.shape != (3,) or not np.all(shares > 0) or abs(shares.sum() - 1.0) > 1e-6:
        raise ConfigError(
            f"split fractions {tuple(fractions)} must be three positive shares (train, "
            "arch_val, test) summing to 1, e.g. (0.6, 0.2, 0.2)"
        )
    return shares


def _split_sizes(n: int, shares: np.ndarray) -> np.ndarray:
    """Largest-remainder sizes summing to ``n``, each at least 1 (needs ``n >= len(shares)``)."""
    exact = shares * n
    sizes = np.floor(exact).astype(np.int64)
    leftover = n - int(sizes.sum())
    sizes[np.argsort(-(exact - sizes), kind="stable")[:leftover]] += 1
    # Give empty splits one sample each, taken from the currently largest split.
    for i in np.flatnonzero(sizes == 0):
        sizes[np.argmax(sizes)] -= 1
        sizes[i] = 1
    return sizes


def load_tensors(
    dataset: Dataset[tuple[torch.Tensor, torch.Tensor]], indices: Sequence[int] | np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read the given samples into two stacked tensors (datasets here are small).

    Args:
        dataset: yields ``(image (3, H, W) float32, mask (H, W) int64)``; all of one size.
        indices: sample indices, at least one.

    Returns:
        ``(images (N, 3, H, W) float32, masks (N, H, W))``: masks as uint8 (an eighth of
        int64's memory; read back as int64 by :meth:`FeatureSet.batch`) when every label
        fits, else int64. Each sample is copied straight into the stacked tensors (no second
        copy of the split in memory).

    Raises:
        DataError: no indices, or samples of different sizes (pass a ``size`` to the loader).
    """
    if len(indices) == 0:
        raise DataError("load_tensors: no indices given; pass a non-empty split")
    images = masks = None
    for k, i in enumerate(indices):
        image, mask = dataset[int(i)]
        if images is None or masks is None:
            images = torch.empty((len(indices), *image.shape), dtype=image.dtype)
            masks = torch.empty((len(indices), *mask.shape), dtype=torch.uint8)
        if tuple(image.shape) != tuple(images.shape[1:]):
            sizes = [list(images.shape[1:]), list(image.shape)]
            raise DataError(
                f"load_tensors: samples have different sizes {sizes}; pass size=(H, W) to "
                "load_dataset so every sample is resized alike")
        if masks.dtype == torch.uint8 and mask.numel() and (int(mask.min()) < 0
                                                            or int(mask.max()) > 255):
            masks = masks.long()  # a label beyond uint8: keep them all as int64
        images[k], masks[k] = image, mask
    assert images is not None and masks is not None
    return images, masks
