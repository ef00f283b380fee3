"""Diverse subsets of candidate architectures: greedy farthest-point selection (pure numpy).

Used to choose which candidates get the expensive weight-sharing evaluation: 100 out of
1,000 sampled ones (baseline), or 100 out of the 500 pre-filtered ones (I3).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from linas._errors import ConfigError
from linas.space import NUM_CHOICES, NUM_LAYERS


def _check_choices(choices: np.ndarray) -> np.ndarray:
    arr = np.asarray(choices)
    if arr.ndim != 2 or arr.shape[1] != NUM_LAYERS or arr.shape[0] == 0:
        raise ConfigError(
            f"choices must have shape (N, {NUM_LAYERS}) with N >= 1, got "
            f"{arr.shape}; pass one row of choice indices per architecture"
        )
    if arr.min() < 0 or arr.max() >= NUM_CHOICES:
        raise ConfigError(
            f"choices must be indices in 0..{NUM_CHOICES - 1}, got values in "
            f"{arr.min()}..{arr.max()}"
        )
    return arr.astype(np.int64)


def _normalised_objectives(objectives: np.ndarray | None, n: int) -> np.ndarray:
    """Objectives min-max scaled per column to [0, 1] (constant columns -> 0), (n, k)."""
    if objectives is None:
        return np.zeros((n, 0))
    obj = np.asarray(objectives, dtype=np.float64)
    obj = obj[:, None] if obj.ndim == 1 else obj
    if obj.ndim != 2 or obj.shape[0] != n or not np.all(np.isfinite(obj)):
        raise ConfigError(f"objectives must be finite with shape ({n}, k), got {obj.shape}")
    span = obj.max(axis=0) - obj.min(axis=0)
    return (obj - obj.min(axis=0)) / np.where(span > 0, span, 1.0)


def diverse_subset(
    choices: np.ndarray,
    objectives: np.ndarray | None,
    k: int,
    seed: int,
    must_include: Sequence[int] | np.ndarray | None = None,
    objective_weight: float = 1.0,
) -> np.ndarray:
    """Pick ``k`` diverse items by greedy farthest-point selection, deterministically.

    Distance between two items = Hamming distance of their choices / 5 + ``objective_weight``
    x Euclidean distance of their min-max normalised objectives / sqrt(#objectives); both
    terms lie in [0, 1]. Selection starts from ``must_include`` (in the order given) or, when
    that is empty, from one item drawn with ``seed``; then repeatedly adds the item farthest
    from the selected set (ties: lowest index).

    Args:
        choices: choice indices, shape (N, 5).
        objectives: per-item objectives, shape (N, m) or (N,), or None for choices only.
        k: how many to select, 0 <= k <= N.
        seed: random seed for the first item (unused when ``must_include`` is given).
        must_include: indices that must be selected first.
        objective_weight: weight of the objective term, >= 0.

    Returns:
        int64 indices into ``choices``, shape (k,), in selection order.

    Raises:
        ConfigError: on bad shapes, k out of range or bad ``must_include`` indices.
    """
    arr = _check_choices(choices)
    n = arr.shape[0]
    obj = _normalised_objectives(objectives, n)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 0 <= k <= n:
        raise ConfigError(f"diverse_subset: k={k!r} must be an integer in 0..{n} (the items)")
    start = _start_indices(must_include, n, k, seed)
    obj_scale = objective_weight / np.sqrt(obj.shape[1]) if obj.shape[1] else 0.0

    def dist(i: int) -> np.ndarray:  # (N,) distance of every item to item i
        hamming = (arr != arr[i]).sum(axis=1) / NUM_LAYERS
        if obj.shape[1] == 0:
            return hamming
        return hamming + obj_scale * np.sqrt(((obj - obj[i]) ** 2).sum(axis=1))

    selected: list[int] = []
    nearest = np.full(n, np.inf)
    for i in start[:k]:
        selected.append(i)
        nearest = np.minimum(nearest, dist(i))
    while len(selected) < k:
        nearest[selected] = -np.inf  # never re-pick, even at distance 0 from a duplicate
        i = int(np.argmax(nearest))
        selected.append(i)
        nearest = np.minimum(nearest, dist(i))
    return np.asarray(selected, dtype=np.int64)


def _start_indices(
    must_include: Sequence[int] | np.ndarray | None, n: int, k: int, seed: int
) -> list[int]:
    """The de-duplicated ``must_include`` indices, or one seeded random index."""
    if must_include is None or len(must_include) == 0:
        return [int(np.random.default_rng(seed).integers(n))] if k > 0 else []
    idx = [int(i) for i in np.asarray(must_include).reshape(-1)]
    if min(idx) < 0 or max(idx) >= n:
        raise ConfigError(f"must_include indices {idx!r} must lie in 0..{n - 1}")
    unique = list(dict.fromkeys(idx))  # keep first occurrences, in order
    if len(unique) > k:
        raise ConfigError(
            f"must_include has {len(unique)} distinct indices but k={k}; raise k or include fewer"
        )
    return unique


def baseline_eval_subset(
    choices: np.ndarray, latencies: np.ndarray, k: int, seed: int
) -> np.ndarray:
    """The baseline's evaluation set: every device's fastest candidate, then spread.

    Starts from each device's LUT-fastest candidate (lowest index on ties) and fills up by
    :func:`diverse_subset` on the choices plus the per-device latencies, so the subset spreads
    over every device's latency range.

    Args:
        choices: candidate choice indices, shape (N, 5), e.g. 1,000 sampled candidates.
        latencies: candidate latencies in ms, shape (N, D) for D devices, or (N,).
        k: how many to evaluate, e.g. 100 (>= the number of distinct fastest candidates).
        seed: random seed (passed on; the start is fixed by the fastest candidates).

    Returns:
        int64 indices into ``choices``, shape (k,), fastest candidates first.

    Raises:
        ConfigError: on bad shapes or k too small to hold every device's fastest candidate.
    """
    lat = np.asarray(latencies, dtype=np.float64)
    lat = lat[:, None] if lat.ndim == 1 else lat
    if lat.ndim != 2 or lat.shape[0] != np.asarray(choices).shape[0]:
        raise ConfigError(
            f"latencies must have shape (N, devices) matching choices, got "
            f"{lat.shape} for {np.asarray(choices).shape[0]} candidates"
        )
    fastest = np.argmin(lat, axis=0)  # (D,), first index on ties
    return diverse_subset(choices, lat, k, seed, must_include=fastest)
