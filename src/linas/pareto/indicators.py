"""Front quality indicators: exact 2-D and 3-D hypervolume, IGD, evaluations to a target
(pure numpy).

Objectives are (latency in ms, minimised; mIoU, maximised). The plain functions are the API;
:class:`Indicator` subclasses wrap them for code that wants a configured object with ``do``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

from linas._errors import ConfigError
from linas.pareto.front import _front_sorted, as_objectives

# Rows of the (reference x approximation) distance matrix computed at once in igd().
_IGD_BLOCK = 1 << 20


def reference_point(latency_max_ms: float, miou_ref: float = 0.0) -> tuple[float, float]:
    """The hypervolume reference point ``(ref_latency_ms, ref_miou)`` for one device.

    The project fixes it per device so that runs, seeds and ablation rows compare:

    * latency = the exact maximum LUT latency over the whole space for that device,
      ``LUTLatencyModel(lut).exhaustive().max()`` (equivalently ``.bounds()[1]``), so every
      architecture lies inside the box and all runs using the same LUT share the point;
    * mIoU = 0.

    The box is closed at the reference point and a point counts only when strictly better in
    both objectives, so the slowest architecture itself (width 0) and any mIoU of 0 add
    nothing. ``exhaustive()`` is float32; a float64 ``predict`` of the slowest architecture can
    exceed it by a rounding error, which changes nothing for the same reason.

    Args:
        latency_max_ms: the device's maximum LUT latency in ms (> 0, finite).
        miou_ref: the mIoU bound, 0 by default.

    Returns:
        ``(latency_max_ms, miou_ref)`` as floats.

    Raises:
        ConfigError: when either value is not finite or the latency is not positive.
    """
    lat, miou = float(latency_max_ms), float(miou_ref)
    if not math.isfinite(lat) or lat <= 0:
        raise ConfigError(
            f"reference latency {latency_max_ms!r} ms must be finite and > 0; use the device's "
            "maximum LUT latency, LUTLatencyModel(lut).exhaustive().max()"
        )
    if not math.isfinite(miou):
        raise ConfigError(f"reference mIoU {miou_ref!r} must be finite; the project uses 0")
    return lat, miou


def _check_ref(ref: tuple[float, float]) -> tuple[float, float]:
    """Validate a reference point given as two finite numbers."""
    if len(ref) != 2 or not all(math.isfinite(float(v)) for v in ref):
        raise ConfigError(
            f"hypervolume reference point {ref!r} must be two finite numbers "
            "(latency_ms, miou); build it with linas.pareto.reference_point()"
        )
    return float(ref[0]), float(ref[1])


def hypervolume_2d(lat: np.ndarray, acc: np.ndarray, ref: tuple[float, float]) -> float:
    """Exact area dominated by the points inside the box bounded by ``ref``.

    The area is the union over points of ``[lat_i, ref_lat] x [ref_miou, acc_i]``. Points not
    strictly better than ``ref`` in both objectives contribute nothing. O(n log n).

    Args:
        lat: latencies in ms, shape (n,), minimised.
        acc: mIoU, shape (n,), maximised.
        ref: ``(ref_latency_ms, ref_miou)``, see :func:`reference_point`.

    Returns:
        The area in ms x mIoU units (0.0 when no point is inside the box).

    Raises:
        ConfigError: on mismatched shapes, NaN values or a non-finite reference point.
    """
    lat_a, acc_a = as_objectives(lat, acc)
    ref_lat, ref_acc = _check_ref(ref)
    inside = (lat_a < ref_lat) & (acc_a > ref_acc)
    lat_in, acc_in = lat_a[inside], acc_a[inside]
    front = _front_sorted(lat_in, acc_in)  # latency asc, so mIoU asc
    if front.shape[0] == 0:
        return 0.0
    f_lat, f_acc = lat_in[front], acc_in[front]
    # between front point i and i+1 the best mIoU reachable is acc_i: a staircase of strips
    widths = np.diff(np.r_[f_lat, ref_lat])  # (m,)
    return float(np.dot(widths, f_acc - ref_acc))


def hypervolume_3d(points: np.ndarray, ref: tuple[float, float, float] | np.ndarray) -> float:
    """Exact volume dominated by 3-objective points (all **minimised**) inside the box of ``ref``.

    Slicing along the third objective: between consecutive distinct third-objective values
    the dominated cross-section is the exact 2-D hypervolume of the points already reached,
    so the volume is a sum of slab thickness x area. O(n^2 log n), fine for a few thousand
    points. Maximised objectives (mIoU) are passed negated, with the reference negated too.

    Args:
        points: shape (n, 3), minimised objectives.
        ref: the reference point, 3 finite numbers; only points strictly better than it in
            every objective count.

    Returns:
        The volume (0.0 when no point is inside the box).

    Raises:
        ConfigError: on a bad shape, NaN values or a non-finite reference point.
    """
    pts = np.asarray(points, dtype=np.float64)
    r = np.asarray(ref, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or r.shape != (3,) or not np.all(np.isfinite(r)):
        raise ConfigError(f"hypervolume_3d needs points of shape (n, 3) and 3 finite reference "
                          f"values, got {pts.shape} and {tuple(r.reshape(-1))}")
    if np.isnan(pts).any():
        raise ConfigError("hypervolume_3d: points contain NaN; drop those points first")
    pts = pts[np.all(pts < r, axis=1)]
    if pts.shape[0] == 0:
        return 0.0
    pts = pts[np.argsort(pts[:, 2], kind="stable")]
    z_next = np.r_[pts[1:, 2], r[2]]  # (n,) top of each slab
    volume = 0.0
    for i in np.flatnonzero(z_next > pts[:, 2]):  # skip zero-thickness slabs (tied z)
        # area minimised in (x, y) == hypervolume_2d with y negated as a maximised objective
        area = hypervolume_2d(pts[: i + 1, 0], -pts[: i + 1, 1], (r[0], -r[1]))
        volume += area * (z_next[i] - pts[i, 2])
    return float(volume)


def _check_scale(scale: tuple[float, float] | None) -> np.ndarray:
    """Per-objective divisors for IGD: the given ranges, or ones."""
    if scale is None:
        return np.ones(2)
    s = np.asarray(scale, dtype=np.float64)
    if s.shape != (2,) or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ConfigError(
            f"IGD scale {scale!r} must be two finite positive ranges (latency_ms, miou); "
            "use the reference front's ranges or pass None"
        )
    return s


def igd(
    front_lat: np.ndarray,
    front_acc: np.ndarray,
    ref_front_lat: np.ndarray,
    ref_front_acc: np.ndarray,
    scale: tuple[float, float] | None = None,
) -> float:
    """Inverted generational distance of an approximation front to a reference front.

    The mean, over reference points, of the Euclidean distance to the nearest approximation
    point, after dividing each objective by ``scale`` (so ms and mIoU weigh alike).

    Args:
        front_lat: approximation front latencies (ms), shape (m,).
        front_acc: approximation front mIoU, shape (m,).
        ref_front_lat: reference front latencies (ms), shape (r,), r >= 1.
        ref_front_acc: reference front mIoU, shape (r,).
        scale: ``(latency range, mIoU range)`` to normalise by, or None for raw units.

    Returns:
        The IGD (0 when every reference point is in the approximation); ``inf`` when the
        approximation front is empty.

    Raises:
        ConfigError: on bad shapes, NaN values, an empty reference front or a bad scale.
    """
    s = _check_scale(scale)
    approx = np.stack(as_objectives(front_lat, front_acc), axis=1) / s  # (m, 2)
    target = np.stack(as_objectives(ref_front_lat, ref_front_acc), axis=1) / s  # (r, 2)
    if target.shape[0] == 0:
        raise ConfigError("IGD needs a non-empty reference front; pass at least one point")
    if approx.shape[0] == 0:
        return math.inf
    rows = max(1, _IGD_BLOCK // approx.shape[0])  # bound the (rows, m) temporaries
    nearest = np.empty(target.shape[0])
    for start in range(0, target.shape[0], rows):
        block = target[start : start + rows]  # (b, 2)
        d2 = (block[:, None, 0] - approx[None, :, 0]) ** 2  # (b, m)
        d2 += (block[:, None, 1] - approx[None, :, 1]) ** 2
        nearest[start : start + rows] = np.sqrt(d2.min(axis=1))
    return float(nearest.mean())


def hypervolume_trace(lat: np.ndarray, acc: np.ndarray, ref: tuple[float, float]) -> np.ndarray:
    """Hypervolume of the first k evaluated points, for k = 1..n (evaluation order).

    Args:
        lat: latencies in ms in evaluation order, shape (n,).
        acc: mIoU in evaluation order, shape (n,).
        ref: the reference point.

    Returns:
        float64 array, shape (n,), non-decreasing.

    Raises:
        ConfigError: on bad inputs (see :func:`hypervolume_2d`).
    """
    lat_a, acc_a = as_objectives(lat, acc)
    _check_ref(ref)
    # O(n^2 log n) by recomputation: fine for the <= few thousand evaluations of a search
    return np.array(
        [hypervolume_2d(lat_a[:k], acc_a[:k], ref) for k in range(1, lat_a.shape[0] + 1)]
    )


def evaluations_to_reach(
    lat: np.ndarray,
    acc: np.ndarray,
    ref: tuple[float, float],
    target_hv: float,
    fraction: float = 0.95,
) -> int | None:
    """Number of evaluations after which the hypervolume reaches ``fraction * target_hv``.

    Args:
        lat: latencies in ms in evaluation order, shape (n,).
        acc: mIoU in evaluation order, shape (n,).
        ref: the reference point (the same one ``target_hv`` was computed with).
        target_hv: the reference hypervolume, e.g. of the reference front.
        fraction: share of ``target_hv`` to reach, in (0, 1].

    Returns:
        The smallest k (1-based) reaching it, or None when the n evaluations never do.

    Raises:
        ConfigError: on a fraction outside (0, 1] or a non-finite target.
    """
    if not 0 < fraction <= 1 or not math.isfinite(target_hv):
        raise ConfigError(
            f"fraction {fraction!r} must be in (0, 1] and target_hv {target_hv!r} finite"
        )
    trace = hypervolume_trace(lat, acc, ref)
    hit = np.flatnonzero(trace >= fraction * target_hv)
    return int(hit[0]) + 1 if hit.size else None


class Indicator(ABC):
    """A front quality measure: ``do`` checks the objectives, ``_do`` computes (as in pymoo)."""

    def do(self, lat: np.ndarray, acc: np.ndarray) -> float:
        """Evaluate the indicator on a set of (latency ms, mIoU) points.

        Args:
            lat: latencies in ms, shape (n,).
            acc: mIoU, shape (n,).

        Returns:
            The indicator value.

        Raises:
            ConfigError: on mismatched shapes or NaN values.
        """
        lat_a, acc_a = as_objectives(lat, acc)
        return self._do(lat_a, acc_a)

    @abstractmethod
    def _do(self, lat: np.ndarray, acc: np.ndarray) -> float:
        """Compute the value on checked float64 vectors."""


class Hypervolume(Indicator):
    """:func:`hypervolume_2d` with a fixed reference point."""

    def __init__(self, ref: tuple[float, float]) -> None:
        self.ref = _check_ref(ref)

    def _do(self, lat: np.ndarray, acc: np.ndarray) -> float:
        return hypervolume_2d(lat, acc, self.ref)


class IGD(Indicator):
    """:func:`igd` against a fixed reference front and scale."""

    def __init__(
        self,
        ref_front_lat: np.ndarray,
        ref_front_acc: np.ndarray,
        scale: tuple[float, float] | None = None,
    ) -> None:
        self.ref_lat, self.ref_acc = as_objectives(ref_front_lat, ref_front_acc)
        if self.ref_lat.shape[0] == 0:
            raise ConfigError("IGD needs a non-empty reference front; pass at least one point")
        _check_scale(scale)
        self.scale = scale

    def _do(self, lat: np.ndarray, acc: np.ndarray) -> float:
        return igd(lat, acc, self.ref_lat, self.ref_acc, self.scale)
