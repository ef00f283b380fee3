"""Hypervolume and IGD against closed forms and a grid oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linas._errors import ConfigError
from linas.pareto import (
    IGD,
    Hypervolume,
    evaluations_to_reach,
    hypervolume_2d,
    hypervolume_trace,
    igd,
    reference_point,
)


def grid_hypervolume(lat: list[int], acc: list[int], ref: tuple[int, int]) -> int:
    """Count unit cells [x, x+1] x [y, y+1] inside the box covered by some point."""
    cells = 0
    for x in range(min(lat + [ref[0]]), ref[0]):
        for y in range(ref[1], max(acc + [ref[1]])):
            cells += any(lv <= x and av >= y + 1 for lv, av in zip(lat, acc, strict=True))
    return cells


points = st.integers(0, 25).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(-3, 12), min_size=n, max_size=n),
        st.lists(st.integers(-3, 12), min_size=n, max_size=n),
    )
)


@settings(max_examples=200, deadline=None)
@given(points, st.integers(0, 10), st.integers(-2, 6))
def test_hypervolume_matches_grid(pts: tuple[list[int], list[int]], rl: int, ra: int) -> None:
    lat, acc = pts
    hv = hypervolume_2d(np.array(lat, float), np.array(acc, float), (rl, ra))
    assert hv == grid_hypervolume(lat, acc, (rl, ra))


def test_staircase_closed_form() -> None:
    # a true trade-off staircase: strips 1 x 1 + 1 x 2 + 1 x 3
    assert hypervolume_2d(np.array([1.0, 2, 3]), np.array([1.0, 2, 3]), (4, 0)) == 6.0
    # (1, 3) dominates (2, 2) and (3, 1) when latency is minimised: one 3 x 3 box
    assert hypervolume_2d(np.array([1.0, 2, 3]), np.array([3.0, 2, 1]), (4, 0)) == 9.0


def test_points_outside_reference_add_nothing() -> None:
    base = hypervolume_2d(np.array([1.0]), np.array([0.5]), (2, 0))
    assert base == pytest.approx(0.5)
    lat = np.array([1.0, 2.0, 3.0, 0.5, 1.5])  # at ref latency, beyond it, at ref mIoU, below
    acc = np.array([0.5, 0.9, 0.9, 0.0, -0.1])
    assert hypervolume_2d(lat, acc, (2, 0)) == pytest.approx(base)
    assert hypervolume_2d(np.array([3.0]), np.array([0.9]), (2, 0)) == 0.0
    assert hypervolume_2d(np.array([]), np.array([]), (2, 0)) == 0.0


def test_duplicates_and_order_do_not_change_hypervolume() -> None:
    rng = np.random.default_rng(1)
    lat, acc = rng.random(50), rng.random(50)
    hv = hypervolume_2d(lat, acc, (1.0, 0.0))
    perm = rng.permutation(100)
    both_l, both_a = np.r_[lat, lat][perm], np.r_[acc, acc][perm]
    assert hypervolume_2d(both_l, both_a, (1.0, 0.0)) == pytest.approx(hv)
    assert Hypervolume((1.0, 0.0)).do(lat, acc) == pytest.approx(hv)


def test_reference_point() -> None:
    assert reference_point(812.5) == (812.5, 0.0)
    assert reference_point(10, 0.1) == (10.0, 0.1)
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ConfigError, match="reference latency"):
            reference_point(bad)
    with pytest.raises(ConfigError, match="reference point"):
        hypervolume_2d(np.zeros(1), np.zeros(1), (math.inf, 0))


def test_igd_zero_on_equal_fronts_and_hand_case() -> None:
    lat, acc = np.array([1.0, 2.0, 4.0]), np.array([0.2, 0.5, 0.9])
    assert igd(lat, acc, lat, acc) == 0.0
    # reference (0, 0) and (3, 4); approximation (0, 0): distances 0 and 5 -> mean 2.5
    ref_l, ref_a = np.array([0.0, 3.0]), np.array([0.0, 4.0])
    assert igd(np.array([0.0]), np.array([0.0]), ref_l, ref_a) == pytest.approx(2.5)
    # scaled by (3, 4) the far reference point becomes (1, 1): distances 0 and sqrt(2)
    got = igd(np.array([0.0]), np.array([0.0]), ref_l, ref_a, scale=(3.0, 4.0))
    assert got == pytest.approx(math.sqrt(2) / 2)
    assert IGD(ref_l, ref_a, (3.0, 4.0)).do(np.array([0.0]), np.array([0.0])) == pytest.approx(
        math.sqrt(2) / 2
    )
    # an approximation point at 1 unit from each of two reference points
    assert igd(
        np.array([1.0]), np.array([1.0]), np.array([0.0, 2.0]), np.array([1.0, 1.0])
    ) == pytest.approx(1.0)


def test_igd_edge_cases() -> None:
    assert igd(np.array([]), np.array([]), np.array([1.0]), np.array([0.5])) == math.inf
    with pytest.raises(ConfigError, match="non-empty reference"):
        igd(np.array([1.0]), np.array([0.5]), np.array([]), np.array([]))
    with pytest.raises(ConfigError, match="scale"):
        igd(np.array([1.0]), np.array([0.5]), np.array([1.0]), np.array([0.5]), (0.0, 1.0))


def test_igd_blocks_agree_with_direct() -> None:
    rng = np.random.default_rng(2)
    a, r = rng.random((300, 2)), rng.random((5000, 2))
    direct = np.sqrt(((r[:, None] - a[None]) ** 2).sum(2)).min(1).mean()
    assert igd(a[:, 0], a[:, 1], r[:, 0], r[:, 1]) == pytest.approx(direct)


def test_hypervolume_trace_and_evaluations_to_reach() -> None:
    lat, acc = np.array([3.0, 1.0, 2.0]), np.array([3.0, 1.0, 2.0])
    np.testing.assert_allclose(hypervolume_trace(lat, acc, (4, 0)), [3.0, 5.0, 6.0])
    assert evaluations_to_reach(lat, acc, (4, 0), target_hv=6.0) == 3
    assert evaluations_to_reach(lat, acc, (4, 0), target_hv=6.0, fraction=0.8) == 2
    assert evaluations_to_reach(lat, acc, (4, 0), target_hv=10.0) is None
