"""Two-objective non-dominated sorting: latency (ms, minimised) vs mIoU (maximised).

Pure numpy, O(n log n). Point ``p`` dominates ``q`` when ``lat_p <= lat_q`` and
``acc_p >= acc_q`` with at least one strict inequality.

Duplicates: identical points do not dominate each other, but a front that lists the same
architecture's objectives twice is useless, so among identical points exactly one -- the one
with the lowest index -- is non-dominated; the others behave as if that one dominated them
(they move to the next rank). Every function here follows that one rule.
"""

from __future__ import annotations

import bisect

import numpy as np

from linas._errors import ConfigError


def as_objectives(lat: np.ndarray, acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert a (latency, accuracy) pair to two float64 vectors of equal length.

    Args:
        lat: latencies in ms, shape (n,).
        acc: accuracies (mIoU), shape (n,).

    Returns:
        ``(lat, acc)`` as 1-D float64 arrays.

    Raises:
        ConfigError: on shapes that are not (n,) and (n,), or on NaN values.
    """
    lat_a = np.asarray(lat, dtype=np.float64)
    acc_a = np.asarray(acc, dtype=np.float64)
    if lat_a.ndim != 1 or acc_a.shape != lat_a.shape:
        raise ConfigError(
            f"objectives must be two 1-D arrays of equal length, got latency shape "
            f"{lat_a.shape} and mIoU shape {acc_a.shape}; pass one value per architecture"
        )
    for name, arr in (("latency", lat_a), ("mIoU", acc_a)):
        if np.isnan(arr).any():
            bad = int(np.flatnonzero(np.isnan(arr))[0])
            raise ConfigError(
                f"{name} at index {bad} is NaN; drop or re-evaluate that architecture first"
            )
    return lat_a, acc_a


def _front_sorted(lat: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated points, sorted by latency (inputs already checked).

    Equivalent to the sweep "sort by latency asc, acc desc, index asc; keep a point when its
    acc beats the running max" but avoids ``lexsort`` (10x slower than a plain argsort at 1e6
    points): sort by latency only, reduce each equal-latency group to its best acc, sweep the
    groups, then resolve the few surviving groups to their lowest-index best point.
    """
    n = lat.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.int64)
    order = np.argsort(lat)  # (n,), unstable: ties are resolved explicitly below
    slat, sacc = lat[order], acc[order]
    starts = np.flatnonzero(np.r_[True, slat[1:] != slat[:-1]])  # first slot of each group
    group_best = np.maximum.reduceat(sacc, starts)  # (G,)
    before = np.maximum.accumulate(group_best)[:-1]  # best acc of strictly faster groups
    keep_group = np.r_[True, group_best[1:] > before]  # (G,)
    group_of = np.repeat(np.arange(starts.shape[0]), np.diff(np.r_[starts, n]))  # (n,)
    slot = np.flatnonzero(keep_group[group_of] & (sacc == group_best[group_of]))
    # slots are in latency order; several slots per group only for duplicated best points
    run_starts = np.flatnonzero(np.r_[True, group_of[slot][1:] != group_of[slot][:-1]])
    return np.minimum.reduceat(order[slot], run_starts).astype(np.int64)


def non_dominated_mask(lat: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """Mark the non-dominated points (the first front).

    Among identical points exactly one, the lowest index, is marked (see module docstring).
    Points with equal latency and lower mIoU are dominated.

    Args:
        lat: latencies in ms, shape (n,), minimised.
        acc: mIoU, shape (n,), maximised.

    Returns:
        Boolean mask, shape (n,).

    Raises:
        ConfigError: on mismatched shapes or NaN values.
    """
    lat_a, acc_a = as_objectives(lat, acc)
    mask = np.zeros(lat_a.shape[0], dtype=bool)
    mask[_front_sorted(lat_a, acc_a)] = True
    return mask


def pareto_front(lat: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated points, sorted by latency ascending (so mIoU ascends too).

    Args:
        lat: latencies in ms, shape (n,), minimised.
        acc: mIoU, shape (n,), maximised.

    Returns:
        int64 indices into the inputs, shape (m,), one per distinct front point.

    Raises:
        ConfigError: on mismatched shapes or NaN values.
    """
    lat_a, acc_a = as_objectives(lat, acc)
    return _front_sorted(lat_a, acc_a)


def non_dominated_ranks(lat: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """Front index of every point: 0 = first front, 1 = front once rank 0 is removed, ...

    In 2-D the rank of a point equals the length of the longest chain of points that
    dominate one another and end at it. Sweeping in (latency asc, mIoU desc, index asc)
    order, every earlier point with mIoU >= this one's dominates it (or is its lower-index
    duplicate), so the rank is the longest non-increasing mIoU subsequence ending here,
    found by patience sorting with bisect: O(n log n) for all ranks together.

    Args:
        lat: latencies in ms, shape (n,), minimised.
        acc: mIoU, shape (n,), maximised.

    Returns:
        int64 ranks, shape (n,).

    Raises:
        ConfigError: on mismatched shapes or NaN values.
    """
    lat_a, acc_a = as_objectives(lat, acc)
    order = np.lexsort((-acc_a, lat_a))  # stable: equal keys keep index order
    ranks_sorted = np.empty(order.shape[0], dtype=np.int64)
    # tails[k] = smallest -acc that ends a chain of k + 1 points (non-decreasing list)
    tails: list[float] = []
    for pos, neg_acc in enumerate((-acc_a[order]).tolist()):
        k = bisect.bisect_right(tails, neg_acc)
        if k == len(tails):
            tails.append(neg_acc)
        else:
            tails[k] = neg_acc
        ranks_sorted[pos] = k
    ranks = np.empty_like(ranks_sorted)
    ranks[order] = ranks_sorted
    return ranks
