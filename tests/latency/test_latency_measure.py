"""Measurement: pure statistics against hand-computed values, timing helpers, measure_lut."""

from __future__ import annotations

import json
import math
import platform

import numpy as np
import pytest
import torch
from torch import nn

from linas.latency import (
    SCHEMA_V2,
    TimingStats,
    iqr_filter,
    load_lut,
    measure_lut,
    save_lut,
    summarize,
    time_callable,
    time_module,
)
from linas.space import NUM_CHOICES, NUM_LAYERS


def test_iqr_filter_drops_the_outlier() -> None:
    # Q1 = 2, Q3 = 4 (linear interpolation), IQR = 2, fences [-1, 7]: 100 goes.
    kept = iqr_filter(np.array([3.0, 1.0, 100.0, 2.0, 4.0]))
    np.testing.assert_array_equal(kept, [3.0, 1.0, 2.0, 4.0])


def test_iqr_filter_k_widens_the_fences() -> None:
    # Fences with k=50: [2 - 100, 4 + 100] keep 100.
    assert iqr_filter(np.array([1.0, 2.0, 3.0, 4.0, 100.0]), k=50).size == 5


def test_iqr_filter_rejects_empty() -> None:
    with pytest.raises(ValueError):
        iqr_filter(np.array([]))


def test_summarize_hand_computed() -> None:
    st = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    # Kept [1, 2, 3, 4]: mean 2.5, sample std sqrt(5/3), median 2.5,
    # p95 at position 0.95 * 3 = 2.85 -> 3 + 0.85 * (4 - 3) = 3.85.
    assert st == TimingStats(mean_ms=2.5, std_ms=pytest.approx(math.sqrt(5 / 3)), median_ms=2.5,
                             p95_ms=pytest.approx(3.85), count=4, n_raw=5, n_outliers=1)


def test_summarize_single_sample_has_zero_std() -> None:
    st = summarize([7.0])
    assert (st.mean_ms, st.std_ms, st.median_ms, st.p95_ms, st.count) == (7.0, 0.0, 7.0, 7.0, 1)


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")]])
def test_summarize_rejects_empty_or_non_finite(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        summarize(bad)


def test_time_callable_counts_calls_and_syncs() -> None:
    calls, syncs = [], []
    out = time_callable(lambda: calls.append(1), warmup=3, repeat=5,
                        sync=lambda: syncs.append(1))
    assert len(calls) == 8 and out.shape == (5,)
    assert len(syncs) == 6  # once after the warm-up, once per timed call
    assert np.all(out >= 0) and np.all(np.isfinite(out))


@pytest.mark.parametrize(("warmup", "repeat"), [(-1, 3), (0, 0)])
def test_time_callable_rejects_bad_counts(warmup: int, repeat: int) -> None:
    with pytest.raises(ValueError):
        time_callable(lambda: None, warmup, repeat)


def test_time_module_positive_and_restores_threads_and_mode() -> None:
    conv = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4)).train()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        st = time_module(conv, torch.randn(1, 3, 8, 8), warmup=2, repeat=7, threads=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert st.mean_ms > 0 and st.median_ms > 0 and st.p95_ms > 0
    assert all(math.isfinite(v) for v in (st.mean_ms, st.std_ms, st.median_ms, st.p95_ms))
    assert 1 <= st.count <= 7 and st.n_raw == 7 and st.n_outliers == 7 - st.count
    assert conv.training and conv[1].training  # train/eval flags put back


class _Logged(nn.Module):
    """A tiny conv that logs its id on every forward, to check the timing order."""

    def __init__(self, ident: int, log: list[int], c_out: int) -> None:
        super().__init__()
        self.ident, self.log, self.conv = ident, log, nn.Conv2d(2, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.log.append(self.ident)
        return self.conv(x)


def _fake_factory(log: list[int], made: list[tuple[int, int]]):
    def make(layer: int, choice: int) -> tuple[nn.Module, torch.Tensor]:
        assert not torch.is_inference_mode_enabled()  # factories may create trainable weights
        made.append((layer, choice))
        return _Logged(layer * NUM_CHOICES + choice, log, 2 + choice % 3), torch.randn(1, 2, 4, 4)
    return make


def test_measure_lut_round_trips_through_v2(tmp_path) -> None:
    log, made, ticks = [], [], []
    lut = measure_lut(_fake_factory(log, made), "fake-cpu", (64, 48), warmup=1, repeat=3,
                      threads=1, fixed=lambda: (nn.Conv2d(3, 2, 3), torch.randn(1, 3, 8, 8)),
                      progress=lambda d, t: ticks.append((d, t)))
    assert sorted(made) == [(i, c) for i in range(NUM_LAYERS) for c in range(NUM_CHOICES)]
    assert ticks == [(k, NUM_LAYERS * NUM_CHOICES + 1) for k in range(1, 107)]  # one per entry
    assert lut.mean_ms.shape == (NUM_LAYERS, NUM_CHOICES) and np.all(lut.mean_ms > 0)
    assert np.all((lut.count >= 1) & (lut.count <= 3)) and lut.fixed_ms > 0
    prov = lut.provenance
    assert prov["runtime"] == "torch" and prov["torch_version"] == torch.__version__
    assert prov["threads"] == 1 and prov["input_size"] == [64, 48] and prov["device_type"] == "cpu"
    assert prov["date"].endswith("+00:00") and prov["warmup"] == 1 and prov["repeat"] == 3
    path = save_lut(lut, tmp_path / "fake.json")
    if len(platform.node()) >= 4:  # LUT files get shared: no hostname inside
        assert platform.node() not in path.read_text()
    back = load_lut(path, expect_input_size=(64, 48))
    assert back.schema == SCHEMA_V2 and back.hardware == "fake-cpu"
    for name in ("mean_ms", "std_ms", "median_ms", "p95_ms", "count"):
        np.testing.assert_array_equal(getattr(back, name), getattr(lut, name))
    assert (back.fixed_ms, back.fixed_std_ms) == (lut.fixed_ms, lut.fixed_std_ms)
    assert back.provenance == json.loads(json.dumps(prov)) == prov
    assert (back.warmup, back.repeat, back.input_size) == (1, 3, (64, 48))


def test_measure_lut_interleaves_round_robin() -> None:
    log: list[int] = []
    measure_lut(_fake_factory(log, []), "fake", (16, 16), warmup=0, repeat=2, rounds=2)
    # Layer 0, per round: each candidate gets 1 re-warm + 1 timed call; round 2 starts at 1.
    first = [c for c in range(NUM_CHOICES) for _ in range(2)]
    second = [c for c in [*range(1, NUM_CHOICES), 0] for _ in range(2)]
    assert log[: 4 * NUM_CHOICES] == first + second


def test_measure_lut_rejects_bad_candidates() -> None:
    with pytest.raises(TypeError, match=r"make_candidate\(0, 0\)"):
        measure_lut(lambda layer, choice: nn.Identity(), "x", (8, 8), warmup=0, repeat=1)  # type: ignore[arg-type, return-value]
