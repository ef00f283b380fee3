"""End-to-end validation: metric math against hand-computed values, held-out sampling,
the report layout, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from linas._errors import LUTError
from linas.latency import validate as validate_mod
from linas.latency.lut import LUT
from linas.latency.measure import TimingStats
from linas.latency.runtimes import Runner, get_runtime
from linas.latency.validate import (
    ANCHOR_CHOICES,
    check_disjoint,
    drift_correct,
    format_table,
    metrics,
    predictions,
    sample_architectures,
    time_architectures,
    validation_report,
)
from linas.profiling import validate_lut
from linas.space import NUM_CHOICES, NUM_LAYERS, choices_to_ids


def test_metrics_hand_computed() -> None:
    measured = np.array([10.0, 20.0, 40.0, 50.0])
    predicted = np.array([11.0, 18.0, 48.0, 45.0])  # rel errors 0.1, 0.1, 0.2, 0.1
    m = metrics(predicted, measured)
    assert m["mape"] == pytest.approx(0.125)
    assert m["within_10pct"] == pytest.approx(0.75)
    # ranks: predicted 1,2,4,3 vs 1,2,3,4: rho = 1 - 6*2/(4*15) = 0.8; tau = (5 - 1)/6
    assert m["spearman"] == pytest.approx(0.8)
    assert m["kendall"] == pytest.approx(4 / 6)


def test_metrics_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="positive"):
        metrics(np.ones(3), np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match=">= 2"):
        metrics(np.ones(1), np.ones(1))


def test_sample_architectures_seeded_distinct_and_excluding() -> None:
    a = sample_architectures(100, seed=3)
    assert a.shape == (100, NUM_LAYERS) and a.max() < NUM_CHOICES
    np.testing.assert_array_equal(a, sample_architectures(100, seed=3))
    ids = choices_to_ids(a)
    assert len(set(ids.tolist())) == 100
    b = sample_architectures(100, seed=3, exclude=ids[:50])
    assert not set(choices_to_ids(b).tolist()) & set(ids[:50].tolist())
    with pytest.raises(ValueError, match="used for fitting"):
        check_disjoint(a[:5], a[3:10])
    check_disjoint(None, a)


def _lut() -> LUT:
    table = np.full((NUM_LAYERS, NUM_CHOICES), 2.0)
    pairs = np.full((NUM_LAYERS - 1, NUM_CHOICES, NUM_CHOICES), 0.5)
    return LUT(hardware="x", input_size=(64, 64), mean_ms=table, std_ms=0 * table, fixed_ms=8.0,
               interactions=pairs, interaction_method="fit", provenance={"runtime": "torch"})


def test_report_has_the_three_variants() -> None:
    choices = sample_architectures(4, seed=0)
    preds = predictions(_lut(), choices)
    np.testing.assert_allclose(preds["op_sum"], 10.0)
    np.testing.assert_allclose(preds["with_fixed"], 18.0)
    np.testing.assert_allclose(preds["with_interactions"], 20.0)
    lut = _lut()
    lut.mean_ms = lut.mean_ms + 0.01 * np.arange(NUM_CHOICES)  # distinct sums for the ranks
    measured = np.array([20.0, 21.0, 25.0, 16.0])
    report = validation_report(lut, choices, measured)
    assert report["runtime"] == "torch" and report["n_archs"] == 4
    for variant, pred in predictions(lut, choices).items():
        for name, value in metrics(pred, measured).items():
            assert report[name][variant] == value
    assert report["has_fixed"] and report["interaction_method"] == "fit"
    table = format_table(report)
    assert "(a) op sum" in table and "(c) + interactions" in table


def test_validate_needs_a_measured_lut() -> None:
    lut = _lut()
    lut.provenance = {}
    with pytest.raises(LUTError, match="no provenance runtime"):
        validate_lut(lut, 3)


def test_anchor_removes_drift_between_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine 20% slower during the second group: the anchor timed in every group is
    logged per architecture, and drift_correct scales each group to the reference speed."""
    true_ms = {tuple(ANCHOR_CHOICES): 10.0}
    choices = sample_architectures(6, seed=3)
    for row in choices:
        true_ms[tuple(int(c) for c in row)] = 5.0
    groups = iter([1.0, 1.2])

    def fake_time_runners(runners, warmup, repeat, rounds, tick):
        slow = next(groups)
        out = []
        for r in runners:
            ms = r.run() * slow
            out.append(TimingStats(ms, 0.0, ms, ms, repeat, repeat, 0))
            if tick is not None:
                tick()
        return out

    monkeypatch.setattr(validate_mod, "time_runners", fake_time_runners)
    ticks: list[int] = []
    log: list[float] = []

    def prepare(row):
        return Runner(lambda: true_ms[tuple(row)])

    rt = get_runtime("torch", "cpu", 1)
    raw = time_architectures(prepare, choices, rt, group=3, tick=lambda: ticks.append(1),
                             anchor_log=log)
    np.testing.assert_allclose(raw, [5.0] * 3 + [6.0] * 3)  # as measured: drift included
    assert log == pytest.approx([10.0] * 3 + [12.0] * 3) and len(ticks) == 6  # anchor: no tick
    np.testing.assert_allclose(drift_correct(raw, log, reference_ms=10.0), 5.0)  # LUT's speed
    np.testing.assert_allclose(drift_correct(raw, log), 5.5)  # median speed of the run
    with pytest.raises(ValueError, match="anchor"):
        drift_correct(raw, log[:4])


def test_drift_over_ten_percent_warns_even_when_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    from linas.profiling.drift import warn_drift
    from linas.progress import Reporter

    assert warn_drift([10.0, 10.5], 10.0, "fitting", Reporter(quiet=True)) == pytest.approx(0.05)
    assert capsys.readouterr().err == ""
    assert warn_drift([10.0, 12.0], 10.0, "fitting", Reporter(quiet=True)) == pytest.approx(0.2)
    err = capsys.readouterr().err
    assert "warning" in err and "20%" in err and "fitting" in err
