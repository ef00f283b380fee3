"""The fleet plan on hand-made cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from linas._errors import ConfigError
from linas.pareto.fleet import fleet_summary, plan_fleet

# archs: big (accurate, slow), mid, small (fast); devices: gpu, jetson, pi
LAT = np.array([[1.0, 20.0, 100.0], [0.5, 8.0, 40.0], [0.2, 3.0, 12.0]])
ACC = np.array([0.9, 0.8, 0.6])


def test_one_decoder_serves_everyone_when_it_can():
    plan = plan_fleet(LAT, ACC, np.array([2.0, 10.0, 50.0]))
    assert plan.chosen == (1,) and plan.assignment == (1, 1, 1)
    assert plan.own_best == (0, 1, 1)
    assert plan.miou_given_up == pytest.approx((0.1, 0.0, 0.0))


def test_two_decoders_when_budgets_split_the_fleet():
    lat = LAT.copy()
    lat[2, 0] = 2.5  # the small (depthwise) one is slow on the GPU
    plan = plan_fleet(lat, ACC, np.array([2.0, 10.0, 15.0]))
    # the pi needs the small one, the GPU cannot have it; {mid, small} (2.2 summed mIoU)
    # beats {big, small} (2.1): 2 decoders, not 3
    assert plan.chosen == (1, 2) and plan.assignment == (1, 1, 2)
    assert plan.miou_given_up == pytest.approx((0.1, 0.0, 0.0))


def test_among_smallest_plans_the_most_accurate():
    lat = np.array([[1.0, 1.0], [5.0, 1.0], [1.0, 5.0], [0.5, 0.5]])
    acc = np.array([0.5, 0.9, 0.9, 0.4])
    plan = plan_fleet(lat, acc, np.array([2.0, 2.0]))
    assert plan.chosen == (0,)  # one decoder; arch 0 beats arch 3
    assert plan_fleet(lat, acc, np.array([6.0, 6.0])).chosen == (1,)


def test_uncoverable_device_is_reported_not_fatal():
    plan = plan_fleet(LAT, ACC, np.array([2.0, 10.0, 5.0]))
    assert plan.assignment[2] is None and plan.chosen == (1,)
    summary = fleet_summary(plan, ["big", "mid", "small"], ["gpu", "jet", "pi"], ACC, LAT,
                            np.array([2.0, 10.0, 5.0]))
    assert summary["uncovered"] == ["pi"] and summary["decoders"] == ["mid"]
    assert summary["devices"]["gpu"]["own_best_arch"] == "big"


def test_exact_against_brute_force():
    rng = np.random.default_rng(0)
    from itertools import combinations

    for _ in range(20):
        n, d = 8, 4
        lat = rng.uniform(1, 10, (n, d))
        acc = rng.uniform(0, 1, n)
        bud = rng.uniform(3, 9, d)
        plan = plan_fleet(lat, acc, bud)
        feas = lat <= bud
        cover = [j for j in range(d) if feas[:, j].any()]
        best = None
        for k in range(1, n + 1):
            for subset in combinations(range(n), k):
                if all(feas[list(subset), j].any() for j in cover):
                    total = sum(max(acc[a] for a in subset if feas[a, j]) for j in cover)
                    if best is None or total > best[1] + 1e-12:
                        best = (k, total)
            if best is not None:
                break
        got = sum(acc[plan.assignment[j]] for j in cover)
        assert len(plan.chosen) == best[0] and got == pytest.approx(best[1])


def test_bad_shapes():
    with pytest.raises(ConfigError, match="do not agree"):
        plan_fleet(LAT, ACC[:2], np.array([1.0, 2.0, 3.0]))
