"""The fleet plan: the fewest distinct decoders that meet every device's budget (pure numpy).

A team shipping one task to several devices would rather maintain two models than seven.
Given evaluated architectures (their mIoU), each device's predicted latency of each of them and
the budgets, the plan picks the smallest set of architectures such that every device has one
within its budget; among the smallest sets it maximises the summed mIoU of what each device
gets (each device takes the most accurate planned architecture within its budget). It also
reports what each device gives up against its own best.

Exact: a dynamic programme over subsets of devices (partitions of the device set into groups
served by one architecture each), O(3^D) for D devices; fine for the fleets this tool is for
(D <= 14 takes well under a second).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from linas._errors import ConfigError

MAX_DEVICES = 14


@dataclass(frozen=True)
class FleetPlan:
    """The plan: chosen architecture indices and, per device, the index it is served by
    (None when nothing evaluated meets its budget) and the mIoU it gives up."""

    chosen: tuple[int, ...]
    assignment: tuple[int | None, ...]
    own_best: tuple[int | None, ...]
    miou_given_up: tuple[float | None, ...]


def plan_fleet(latency: np.ndarray, miou: np.ndarray, budgets: np.ndarray) -> FleetPlan:
    """The fewest architectures that cover every coverable device, then the most accurate.

    Args:
        latency: (N, D) predicted latency in ms of N architectures on D devices.
        miou: (N,) accuracy of each architecture.
        budgets: (D,) per-device budget in ms (inclusive).

    Returns:
        The :class:`FleetPlan`. Devices that no architecture serves within budget are left out
        of the cover (assignment None) rather than making the plan impossible.

    Raises:
        ConfigError: on mismatched shapes, NaNs, or more than ``MAX_DEVICES`` devices.
    """
    lat, acc, bud = _checked(latency, miou, budgets)
    feasible = lat <= bud[None, :]  # (N, D)
    n_dev = lat.shape[1]
    coverable = [d for d in range(n_dev) if feasible[:, d].any()]
    best_arch, best_val = _best_per_subset(feasible[:, coverable], acc)
    chosen_sets = _min_partition(best_val, len(coverable))
    chosen = tuple(sorted({int(best_arch[s]) for s in chosen_sets}))
    assignment: list[int | None] = [None] * n_dev
    own_best: list[int | None] = [None] * n_dev
    given_up: list[float | None] = [None] * n_dev
    for d in coverable:
        served = [a for a in chosen if feasible[a, d]]
        pick = max(served, key=lambda a: (acc[a], -lat[a, d], -a))
        best = int(np.flatnonzero(feasible[:, d])[np.argmax(acc[feasible[:, d]])])
        assignment[d], own_best[d] = pick, best
        given_up[d] = float(acc[best] - acc[pick])
    return FleetPlan(chosen, tuple(assignment), tuple(own_best), tuple(given_up))


def _checked(latency: np.ndarray, miou: np.ndarray,
             budgets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lat = np.asarray(latency, dtype=np.float64)
    acc = np.asarray(miou, dtype=np.float64)
    bud = np.asarray(budgets, dtype=np.float64)
    if lat.ndim != 2 or acc.shape != (lat.shape[0],) or bud.shape != (lat.shape[1],):
        raise ConfigError(f"fleet plan: latency {lat.shape}, mIoU {acc.shape} and budgets "
                          f"{bud.shape} do not agree; expected (N, D), (N,), (D,)")
    if np.isnan(lat).any() or np.isnan(acc).any() or np.isnan(bud).any():
        raise ConfigError("fleet plan: NaN in latencies, mIoU or budgets")
    if lat.shape[1] > MAX_DEVICES:
        raise ConfigError(f"fleet plan: {lat.shape[1]} devices; the exact plan handles up to "
                          f"{MAX_DEVICES}")
    return lat, acc, bud


def _best_per_subset(feasible: np.ndarray, acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every non-empty subset mask S of the columns: the most accurate architecture within
    budget on all of S (index, -1 if none) and its mIoU (-inf if none)."""
    n_dev = feasible.shape[1]
    size = 1 << n_dev
    best_arch = np.full(size, -1, dtype=np.int64)
    best_val = np.full(size, -np.inf)
    # the subset of devices each architecture serves, as a bit mask
    masks = (feasible.astype(np.int64) << np.arange(n_dev)).sum(axis=1) if n_dev else \
        np.zeros(len(acc), dtype=np.int64)
    order = np.lexsort((np.arange(len(acc)), -acc))  # most accurate first, then lowest index
    for a in order:
        m = int(masks[a])
        sub = m
        while sub:  # every subset of what ``a`` serves that has no better architecture yet
            if best_arch[sub] < 0:
                best_arch[sub], best_val[sub] = a, acc[a]
            sub = (sub - 1) & m
    return best_arch, best_val


def _min_partition(best_val: np.ndarray, n_dev: int) -> list[int]:
    """Subsets partitioning all ``n_dev`` devices: fewest parts, then the largest sum of their
    architectures' mIoU weighted by part size (each device's mIoU)."""
    full = (1 << n_dev) - 1
    count = np.full(full + 1, np.iinfo(np.int64).max // 2, dtype=np.int64)
    value = np.full(full + 1, -np.inf)
    choice = np.zeros(full + 1, dtype=np.int64)
    count[0], value[0] = 0, 0.0
    sizes = np.array([bin(s).count("1") for s in range(full + 1)])
    for t in range(1, full + 1):
        low = t & -t  # the part holding the lowest device of t
        rest = t ^ low
        sub = rest
        while True:
            part = sub | low
            if np.isfinite(best_val[part]):
                c = count[t ^ part] + 1
                v = value[t ^ part] + best_val[part] * sizes[part]
                if c < count[t] or (c == count[t] and v > value[t]):
                    count[t], value[t], choice[t] = c, v, part
            if sub == 0:
                break
            sub = (sub - 1) & rest
    parts, t = [], full
    while t:
        parts.append(int(choice[t]))
        t ^= int(choice[t])
    return parts


def fleet_summary(plan: FleetPlan, archs: list[str], devices: list[str], miou: np.ndarray,
                  latency: np.ndarray, budgets: np.ndarray) -> dict[str, Any]:
    """The plan as plain data for ``results.json`` and the report."""
    per_device: dict[str, Any] = {}
    for d, name in enumerate(devices):
        a, best = plan.assignment[d], plan.own_best[d]
        per_device[name] = None if a is None else {
            "arch": archs[a], "miou": float(miou[a]), "latency_ms": float(latency[a, d]),
            "budget_ms": float(budgets[d]), "own_best_arch": archs[best],  # type: ignore[index]
            "own_best_miou": float(miou[best]), "miou_given_up": plan.miou_given_up[d]}
    return {"decoders": [archs[a] for a in plan.chosen], "n_decoders": len(plan.chosen),
            "devices": per_device,
            "uncovered": [n for d, n in enumerate(devices) if plan.assignment[d] is None],
            "method": "exact: fewest architectures meeting every budget, then the largest "
                      "summed per-device mIoU (weight-sharing, arch-val)"}
