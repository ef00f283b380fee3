"""Selection under a latency budget (C3: 160 ms per image end to end), pure numpy."""

from __future__ import annotations

import math

import numpy as np

from linas._errors import ConfigError
from linas.pareto.front import as_objectives


def _check_budget(budget_ms: float) -> float:
    budget = float(budget_ms)
    if math.isnan(budget):
        raise ConfigError("latency budget is NaN; pass a number of ms, e.g. 160")
    return budget


def select_under_budget(lat: np.ndarray, acc: np.ndarray, budget_ms: float) -> int | None:
    """Index of the most accurate point with ``lat <= budget_ms``.

    Ties in mIoU go to the lower latency, then to the lower index.

    Args:
        lat: (predicted) latencies in ms, shape (n,).
        acc: mIoU, shape (n,).
        budget_ms: the latency budget in ms (inclusive).

    Returns:
        The index, or None when no point meets the budget.

    Raises:
        ConfigError: on mismatched shapes, NaN values or a NaN budget.
    """
    lat_a, acc_a = as_objectives(lat, acc)
    budget = _check_budget(budget_ms)
    ok = np.flatnonzero(lat_a <= budget)
    if ok.size == 0:
        return None
    # lexsort: last key is primary -> mIoU desc, then latency asc, then index (stable)
    best = np.lexsort((lat_a[ok], -acc_a[ok]))[0]
    return int(ok[best])


def budget_share(latencies_all: np.ndarray, budget_ms: float) -> float:
    """Share of architectures whose latency meets the budget (``lat <= budget_ms``).

    Args:
        latencies_all: latencies in ms, any shape, e.g. ``LUTLatencyModel.exhaustive()``.
        budget_ms: the latency budget in ms (inclusive).

    Returns:
        A fraction in [0, 1].

    Raises:
        ConfigError: on an empty array, NaN latencies or a NaN budget.
    """
    lat = np.asarray(latencies_all)
    budget = _check_budget(budget_ms)
    if lat.size == 0:
        raise ConfigError("budget_share needs at least one latency; got an empty array")
    if np.isnan(lat).any():
        raise ConfigError("latencies contain NaN; fix the LUT (linas lut check) first")
    return float(np.count_nonzero(lat <= budget) / lat.size)
