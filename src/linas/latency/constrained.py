"""Physical constraints on fitted latency terms: ridge least squares under linear constraints,
and a floor that keeps a model positive over the whole space.

A fit of interaction terms (:func:`linas.latency.interactions.fit_interactions`) sees a few
dozen architectures from the middle of the space; unconstrained, a linear fit of a convex
response extrapolates to a negative latency at the fastest corner, which no sample covers.
Two guards:

* :func:`constrained_solve` minimises the ridge objective subject to equality constraints
  chosen by an active set: a layer scale fitted below its bound is pinned to it, and the
  fastest architecture of the space, when below the floor, is pinned to the floor; repeat
  until none is violated (each solve is closed form, Woodbury when rows < columns).
* :func:`keep_positive` is the unconditional fallback: it shrinks a pair table toward zero
  (toward the plain LUT, which is positive) just enough to clear a floor; :func:`largest_scale`
  is its bisection, also used to scale measured context marginals.

Pure numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from linas.latency.sums import space_minimum

# A layer's effective op-cost multiplier (1 + scale) stays >= this: a cost never turns into a
# saving through the scale term, so a wider op never gets cheaper by it.
MIN_LAYER_SCALE = 0.0
# The fastest architecture may be at most 4x faster than the plain LUT's (fixed + op sum):
# far below any real in-graph saving, so it binds only on extrapolation artefacts.
FLOOR_FRACTION = 0.25
MAX_ACTIVE = 30  # active-set rounds before giving up (then keep_positive shrinks)

# Given coefficients, a violated constraint as (row, target) meaning ``row @ beta == target``.
Violation = Callable[[np.ndarray], tuple[np.ndarray, float] | None]


class _Ridge:
    """Products with ``H^-1`` for ``H = X'X + diag(penalty)`` (Woodbury when N < P)."""

    def __init__(self, x: np.ndarray, penalty: np.ndarray) -> None:
        if np.any(penalty <= 0):
            raise ValueError("ridge needs strictly positive penalties")
        n, p = x.shape
        self.dinv = 1.0 / penalty  # (P,)
        self.dual = n < p
        if self.dual:
            self.xd = x * self.dinv  # X D^-1, (N, P)
            self.core = np.eye(n) + self.xd @ x.T  # (N, N)
        else:
            self.h = x.T @ x + np.diag(penalty)  # (P, P)

    def inv(self, v: np.ndarray) -> np.ndarray:
        """``H^-1 v`` for v (P,) or (P, k)."""
        if not self.dual:
            return np.linalg.solve(self.h, v)
        dinv = self.dinv if v.ndim == 1 else self.dinv[:, None]
        return dinv * v - self.xd.T @ np.linalg.solve(self.core, self.xd @ v)


def constrained_solve(x: np.ndarray, y: np.ndarray, penalty: np.ndarray,
                      lower: Sequence[tuple[int, float]] = (),
                      violation: Violation | None = None) -> np.ndarray:
    """Minimise ``|x b - y|^2 + sum(penalty * b^2)`` under an active set of constraints.

    Args:
        x: (N, P) design.
        y: (N,) targets.
        penalty: (P,) strictly positive ridge penalties.
        lower: ``(column, bound)`` pairs: ``b[column] >= bound``.
        violation: returns a violated linear constraint of the current solution (or None);
            it is added as an equality and the problem solved again.

    Returns:
        The coefficients (P,). After :data:`MAX_ACTIVE` rounds the last solution is returned
        even if ``violation`` still reports one (callers then apply :func:`keep_positive`).
    """
    ridge = _Ridge(x, penalty)
    base = ridge.inv(x.T @ y)  # unconstrained solution
    rows: list[np.ndarray] = []
    targets: list[float] = []
    pinned: set[int] = set()
    beta = base
    for _ in range(MAX_ACTIVE):
        added = [(j, bound) for j, bound in lower if j not in pinned and beta[j] < bound]
        for j, bound in added:
            pinned.add(j)
            rows.append(np.eye(1, x.shape[1], j)[0])
            targets.append(bound)
        if not added and violation is not None and (found := violation(beta)) is not None:
            rows.append(found[0])
            targets.append(found[1])
        elif not added:
            return beta
        a = np.asarray(rows)  # (k, P)
        hinv_at = ridge.inv(a.T)  # (P, k)
        mu = np.linalg.lstsq(a @ hinv_at, np.asarray(targets) - a @ base, rcond=None)[0]
        beta = base + hinv_at @ mu
    return beta


def plain_floor(table: np.ndarray, fixed_ms: float,
                floor_fraction: float = FLOOR_FRACTION) -> float:
    """``floor_fraction`` times the plain model's (fixed + op sum) fastest architecture."""
    if not 0.0 <= floor_fraction < 1.0:
        raise ValueError(f"floor_fraction must be in [0, 1), got {floor_fraction}")
    return floor_fraction * space_minimum(table, fixed_ms, None)[0]


def keep_positive(table: np.ndarray, fixed_ms: float, pairs: np.ndarray,
                  floor_fraction: float = FLOOR_FRACTION) -> tuple[np.ndarray, float]:
    """Shrink a pair table toward zero just enough that the whole space stays above a floor.

    The floor is :func:`plain_floor`. The minimum over the space of ``plain + t * pairs`` is
    concave in ``t`` (a minimum of affine functions) and above the floor at ``t = 0``, so the
    largest admissible ``t`` in [0, 1] is found by bisection on the exact minimum
    (:func:`linas.latency.sums.space_minimum`).

    Args:
        table: (5, 21) op entries in ms.
        fixed_ms: the fixed part (0 for none).
        pairs: (4, 21, 21) pair terms.
        floor_fraction: in [0, 1).

    Returns:
        ``(pairs * t, t)``; ``t == 1.0`` and ``pairs`` itself when already above the floor.
    """
    floor = plain_floor(table, fixed_ms, floor_fraction)
    t = largest_scale(lambda s: space_minimum(table, fixed_ms, s * pairs)[0], floor)
    return (pairs, 1.0) if t == 1.0 else (t * pairs, t)


def largest_scale(minimum: Callable[[float], float], floor: float) -> float:
    """The largest ``t`` in [0, 1] with ``minimum(t) > floor``, by bisection.

    Args:
        minimum: the model's minimum over the space as a function of a scale ``t`` of some of
            its terms; concave in ``t`` (a minimum of affine functions) with
            ``minimum(0) > floor``, so the admissible ``t`` form an interval from 0.
        floor: the bound.

    Returns:
        1.0 when ``minimum(1) > floor``; else the admissible end of the bisection interval.
    """
    if minimum(1.0) > floor:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(50):  # t to about 1e-15
        mid = 0.5 * (lo + hi)
        if minimum(mid) > floor:
            lo = mid
        else:
            hi = mid
    return lo
