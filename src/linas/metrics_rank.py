"""Rank correlation of two scorings of the same architectures, with a bootstrap interval
(pure functions of arrays).

The ranking-fidelity question (does weight-sharing mIoU order architectures as stand-alone
training does?) is answered by Kendall's tau or Spearman's rho over the architecture pairs
``(x_i, y_i)``, and, since a study trains few architectures stand-alone, by how uncertain
that figure is: :func:`bootstrap_ci` resamples the pairs with replacement and returns the
percentile interval.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import kendalltau, spearmanr

# (x (n,), y (n,)) -> statistic (nan when undefined)
RankStat = Callable[[np.ndarray, np.ndarray], float]


def _pairs(x: np.ndarray | list[float], y: np.ndarray | list[float]
           ) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` as float64 vectors of one length, all finite.

    Raises:
        ValueError: not 1-D, of different lengths, or holding NaN or inf.
    """
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"rank correlation: x {a.shape} and y {b.shape}; expected two 1-D "
                         "arrays of one length (a score per architecture)")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("rank correlation: x or y holds NaN or inf; drop those architectures")
    return a, b


def _degenerate(a: np.ndarray, b: np.ndarray) -> bool:
    """Fewer than two pairs, or a constant ``x`` or ``y``: no correlation is defined."""
    return a.size < 2 or bool(np.all(a == a[0])) or bool(np.all(b == b[0]))


def _correlation(test: Callable[[np.ndarray, np.ndarray], Any], x: np.ndarray | list[float],
                 y: np.ndarray | list[float]) -> float:
    """The statistic of scipy's ``test`` on the pairs, nan when degenerate."""
    a, b = _pairs(x, y)
    if _degenerate(a, b):
        return float("nan")
    return float(test(a, b).statistic)


def kendall_tau(x: np.ndarray | list[float], y: np.ndarray | list[float]) -> float:
    """Kendall's tau-b of ``x`` and ``y`` (ties counted as scipy does); nan when fewer than
    two pairs or either side is constant.

    Raises:
        ValueError: see :func:`_pairs`.
    """
    return _correlation(kendalltau, x, y)


def spearman_rho(x: np.ndarray | list[float], y: np.ndarray | list[float]) -> float:
    """Spearman's rho of ``x`` and ``y`` (average ranks for ties); nan when fewer than two
    pairs or either side is constant.

    Raises:
        ValueError: see :func:`_pairs`.
    """
    return _correlation(spearmanr, x, y)


@dataclass(frozen=True)
class BootstrapCI:
    """A statistic on the sample and its bootstrap percentile interval."""

    estimate: float  # the statistic on the original pairs
    low: float
    high: float
    level: float  # e.g. 0.95
    n_boot: int  # resamples drawn
    n_skipped: int  # degenerate resamples (constant x or y: nan statistic), left out

    @property
    def width(self) -> float:
        return self.high - self.low

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def bootstrap_ci(x: np.ndarray | list[float], y: np.ndarray | list[float],
                 stat: RankStat = kendall_tau, n_boot: int = 2000, seed: int = 0,
                 level: float = 0.95) -> BootstrapCI:
    """Percentile bootstrap interval of ``stat`` over the pairs ``(x_i, y_i)``.

    Each of ``n_boot`` resamples draws ``n`` pair indices with replacement from
    ``np.random.default_rng(seed)``; a resample whose statistic is nan (constant x or y) is
    skipped and counted. The interval is the ``(1 - level) / 2`` and ``(1 + level) / 2``
    quantiles of the remaining statistics (nan when none remain).

    Args:
        x, y: the two scores of each architecture, (n,) each.
        stat: e.g. :func:`kendall_tau` or :func:`spearman_rho`.
        n_boot: resamples, at least 1.
        seed: the generator's seed.
        level: coverage in (0, 1).

    Returns:
        The :class:`BootstrapCI`.

    Raises:
        ValueError: bad ``x``/``y`` (see :func:`_pairs`), fewer than 2 pairs, ``n_boot``
            below 1 or ``level`` outside (0, 1).
    """
    a, b = _pairs(x, y)
    if a.size < 2:
        raise ValueError(f"bootstrap: {a.size} pair(s); a rank correlation needs at least 2")
    if n_boot < 1 or not 0.0 < level < 1.0:
        raise ValueError(f"bootstrap: n_boot = {n_boot}, level = {level}; expected n_boot >= 1 "
                         "and 0 < level < 1 (e.g. 2000 and 0.95)")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(n_boot, a.size))  # (n_boot, n) pair indices
    with warnings.catch_warnings():  # a custom stat may warn on a constant resample
        warnings.simplefilter("ignore", RuntimeWarning)
        stats = np.array([stat(a[i], b[i]) for i in idx], dtype=np.float64)  # (n_boot,)
    kept = stats[np.isfinite(stats)]
    alpha = (1.0 - level) / 2.0
    low, high = (np.quantile(kept, [alpha, 1.0 - alpha]) if kept.size
                 else (float("nan"), float("nan")))
    return BootstrapCI(stat(a, b), float(low), float(high), level, n_boot,
                       int(n_boot - kept.size))
