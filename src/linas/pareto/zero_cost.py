"""I3 zero-cost guided sampling (SPEC.md section 5): score many architectures for free, keep
the promising ones, evaluate few.

1. draw ``n_sample`` (10,000) distinct architectures uniformly, by seed;
2. score each by a zero-cost proxy (NEAR by default) and by LUT latency on every device;
3. pre-filter to ``n_prefilter`` (500) by non-dominated ranks of (latency, proxy score);
4. choose ``n_evaluate`` (100) diverse ones among them for weight-sharing evaluation.

Pre-filter choice: ranks are computed **per device** on the 2-D (latency_d, score) plane, and
a point's rank is its best rank over devices. A joint (devices + 1)-objective sort would call
almost everything non-dominated once devices disagree (7 devices + score = 8 objectives) and
needs O(n^2) algorithms; per device keeps every device's own front at O(D n log n). Whole
ranks are kept while they fit; the rank that overflows is cut by mean rank over devices, then
score, then index. Rank 0 is always kept whole, even beyond ``n_prefilter``, so the pre-filter
never drops a point that is non-dominated for some device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from linas._errors import ConfigError
from linas.pareto.diversity import diverse_subset
from linas.pareto.front import non_dominated_ranks
from linas.pareto.sampling import sample_random


@dataclass
class ZeroCostPick:
    """What the I3 selection saw and chose.

    Attributes:
        sampled: choices of every scored architecture, (N, 5).
        scores: proxy scores, (N,).
        latencies: LUT latencies in ms, (N, D).
        prefiltered: indices into ``sampled`` kept by the pre-filter, (P,).
        order: indices into ``sampled`` to evaluate, in selection order, (K,).
    """

    sampled: np.ndarray
    scores: np.ndarray
    latencies: np.ndarray
    prefiltered: np.ndarray
    order: np.ndarray

    @property
    def picked(self) -> np.ndarray:
        """Choices (K, 5) to evaluate, in selection order."""
        return self.sampled[self.order]


def _check_lat(latencies: np.ndarray, n: int) -> np.ndarray:
    lat = np.asarray(latencies, dtype=np.float64)
    lat = lat[:, None] if lat.ndim == 1 else lat
    if lat.ndim != 2 or lat.shape[0] != n or lat.shape[1] == 0 or not np.all(np.isfinite(lat)):
        raise ConfigError(f"latencies must be finite with shape ({n}, devices), got {lat.shape}")
    return lat


def device_ranks(latencies: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Non-dominated rank of every point on each device's (latency, score) plane.

    Args:
        latencies: ms, shape (N, D) (minimised).
        scores: proxy scores, shape (N,) (maximised).

    Returns:
        int64 ranks, shape (N, D); 0 = non-dominated for that device.

    Raises:
        ConfigError: on bad shapes or non-finite values.
    """
    sc = np.asarray(scores, dtype=np.float64)
    lat = _check_lat(latencies, sc.shape[0])
    return np.stack([non_dominated_ranks(lat[:, d], sc) for d in range(lat.shape[1])], axis=1)


def prefilter(latencies: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of about ``k`` points with the best per-device non-dominated ranks.

    See the module docstring for the rule. Returns ``max(k, #rank-0)`` indices (all points
    when there are fewer than ``k``), sorted ascending.

    Args:
        latencies: ms, shape (N, D).
        scores: proxy scores, shape (N,), higher is better.
        k: target size, >= 1.

    Returns:
        int64 indices into the inputs.

    Raises:
        ConfigError: on bad shapes, values or ``k``.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"prefilter size k={k!r} must be an integer >= 1")
    ranks = device_ranks(latencies, scores)  # (N, D)
    best = ranks.min(axis=1)
    sc = np.asarray(scores, dtype=np.float64)
    # lexsort: last key primary -> best rank, mean rank, higher score, index (stable)
    order = np.lexsort((-sc, ranks.mean(axis=1), best))
    take = max(min(k, best.shape[0]), int(np.count_nonzero(best == 0)))
    return np.sort(order[:take]).astype(np.int64)


def select_zero_cost(sampled: np.ndarray, scores: np.ndarray, latencies: np.ndarray,
                     n_prefilter: int, n_evaluate: int, seed: int) -> ZeroCostPick:
    """Pre-filter scored architectures and choose ``n_evaluate`` diverse ones.

    The diversity step starts from every device's fastest pre-filtered architecture, then
    adds the farthest in (choices, per-device latency, score) space
    (:func:`linas.pareto.diversity.diverse_subset`).

    Args:
        sampled: choices (N, 5).
        scores: proxy scores (N,).
        latencies: ms (N, D).
        n_prefilter: pre-filter size (500).
        n_evaluate: how many to evaluate (100); capped at the pre-filtered count.
        seed: random seed of the diversity step.

    Returns:
        The :class:`ZeroCostPick`.

    Raises:
        ConfigError: on bad shapes or sizes.
    """
    sc = np.asarray(scores, dtype=np.float64)
    lat = _check_lat(latencies, sc.shape[0])
    keep = prefilter(lat, sc, n_prefilter)
    objectives = np.concatenate([lat[keep], sc[keep, None]], axis=1)  # (P, D + 1)
    fastest = np.unique(np.argmin(lat[keep], axis=0))
    k = min(n_evaluate, keep.shape[0])
    local = diverse_subset(sampled[keep], objectives, max(k, fastest.shape[0]), seed,
                           must_include=fastest)
    return ZeroCostPick(np.asarray(sampled), sc, lat, keep, keep[local])


def zero_cost_pick(score: Callable[[np.ndarray], np.ndarray],
                   latencies: Callable[[np.ndarray], np.ndarray], n_sample: int,
                   n_prefilter: int, n_evaluate: int, seed: int) -> ZeroCostPick:
    """The whole I3 selection: sample by seed, score, pre-filter, diversify.

    Args:
        score: proxy scores (N,) of choices (N, 5), e.g. ``lambda c: proxy.score(c, ctx)``.
        latencies: LUT latencies (N, D) in ms of choices (N, 5), all devices.
        n_sample: architectures drawn uniformly (10,000).
        n_prefilter: pre-filter size (500).
        n_evaluate: how many to evaluate (100).
        seed: seeds the sample and the diversity step.

    Returns:
        The :class:`ZeroCostPick`.

    Raises:
        ConfigError: on bad sizes.
    """
    if not 1 <= n_evaluate <= n_prefilter <= n_sample:
        raise ConfigError(f"zero-cost sizes must satisfy 1 <= n_evaluate ({n_evaluate}) <= "
                          f"n_prefilter ({n_prefilter}) <= n_sample ({n_sample})")
    sampled = sample_random(n_sample, seed)
    return select_zero_cost(sampled, score(sampled), latencies(sampled), n_prefilter,
                            n_evaluate, seed)
