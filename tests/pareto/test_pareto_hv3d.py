"""3-D hypervolume against closed forms and a grid oracle."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linas._errors import ConfigError
from linas.pareto import hypervolume_2d, hypervolume_3d


def grid_volume(pts: list[tuple[int, int, int]], ref: tuple[int, int, int]) -> int:
    """Count unit cells [x, x+1] x [y, y+1] x [z, z+1] below ``ref`` dominated by a point."""
    lo = [min([p[i] for p in pts] + [ref[i]]) for i in range(3)]
    return sum(
        any(p[0] <= x and p[1] <= y and p[2] <= z for p in pts)
        for x, y, z in itertools.product(*(range(lo[i], ref[i]) for i in range(3)))
    )


point_sets = st.lists(st.tuples(*(st.integers(-2, 7),) * 3), min_size=0, max_size=12)


@settings(max_examples=60, deadline=None)
@given(point_sets)
def test_matches_grid_oracle(pts: list[tuple[int, int, int]]) -> None:
    ref = (6, 6, 6)
    arr = np.asarray(pts, dtype=float).reshape(-1, 3)
    assert hypervolume_3d(arr, ref) == pytest.approx(grid_volume(pts, ref))


def test_closed_forms() -> None:
    assert hypervolume_3d(np.array([[0.0, 0.0, 0.0]]), (2, 3, 4)) == pytest.approx(24.0)
    # two boxes 2x1x1 and 1x2x1 overlap in a 1x1x1 cube -> 3
    pts = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert hypervolume_3d(pts, (2, 2, 1)) == pytest.approx(3.0)
    assert hypervolume_3d(np.empty((0, 3)), (1, 1, 1)) == 0.0
    assert hypervolume_3d(np.array([[1.0, 0.0, 0.0]]), (1, 1, 1)) == 0.0  # on the box face


def test_constant_third_objective_reduces_to_2d() -> None:
    rng = np.random.default_rng(0)
    lat, acc = rng.random(50), rng.random(50)
    pts = np.stack([lat, -acc, np.zeros(50)], axis=1)
    assert hypervolume_3d(pts, (1.0, 0.0, 2.0)) == pytest.approx(
        2.0 * hypervolume_2d(lat, acc, (1.0, 0.0)))


def test_bad_input() -> None:
    with pytest.raises(ConfigError, match="shape"):
        hypervolume_3d(np.zeros((3, 2)), (1, 1, 1))
    with pytest.raises(ConfigError, match="NaN"):
        hypervolume_3d(np.array([[np.nan, 0, 0]]), (1, 1, 1))
