"""The LUT latency model: one float64 summation (per architecture and over the whole space, bit
for bit), its exact minimum, never a non-positive latency, and the p95 prediction."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from linas._errors import LUTError
from linas.latency import LUT, LUTLatencyModel, check_lut, check_lut_file, load_lut
from linas.latency.sums import space_minimum, space_sums
from linas.space import CHOICE_KEYS, NUM_CHOICES, NUM_LAYERS, Arch, choices_to_ids, ids_to_choices

SPACE = NUM_CHOICES ** NUM_LAYERS


def _lut(seed: int, fixed: float | None = 17.3, pair_scale: float | None = 0.1) -> LUT:
    rng = np.random.default_rng(seed)
    table = rng.random((NUM_LAYERS, NUM_CHOICES)) * 10 + 0.05
    pairs = (rng.normal(size=(NUM_LAYERS - 1, NUM_CHOICES, NUM_CHOICES)) * pair_scale
             if pair_scale is not None else None)
    return LUT("toy", (128, 128), table, table * 0.02, fixed_ms=fixed, fixed_std_ms=0.1,
               interactions=pairs)


@pytest.mark.parametrize(("fixed", "pair_scale"), [(17.3, 0.1), (None, 0.3), (2.0, None)])
def test_exhaustive_is_float64_and_equals_predict_bit_for_bit(fixed: float | None,
                                                              pair_scale: float | None) -> None:
    model = LUTLatencyModel(_lut(0, fixed, pair_scale))
    lat = model.exhaustive()
    assert lat.shape == (SPACE,) and lat.dtype == np.float64
    ids = np.random.default_rng(1).choice(SPACE, size=20_000, replace=False)
    np.testing.assert_array_equal(lat[ids], model.predict(ids_to_choices(ids)))
    low, best = model.minimum()
    assert low == lat.min() and int(np.argmin(lat)) == best.index  # exact, same summation
    assert model.bounds() == (lat.min(), lat.max())


@pytest.mark.parametrize("seed", range(4))
def test_space_minimum_is_the_exhaustive_minimum(seed: int) -> None:
    lut = _lut(seed, fixed=1.0, pair_scale=2.0)  # pairs big enough to move the argmin
    table, pairs = lut.mean_ms, lut.interactions if seed < 3 else None
    lat = space_sums(table, 1.0, pairs)
    low, best = space_minimum(table, 1.0, pairs)
    assert low == lat.min() and choices_to_ids(np.asarray([best]))[0] == np.argmin(lat)
    if pairs is None:
        assert best == tuple(table.argmin(axis=1))


def _negative_somewhere(v1_dict: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A v1 table (entries (i + 1) * (1 + 0.5 c) ms, 15 ms at the fastest architecture) plus a
    fixed part of 2 ms and pair terms that are harmless except on one path: Conv3x3_w75 at
    layers 1 and 2 (the pair cell) costs -25 ms there."""
    data = v1_dict()
    pairs = np.full((NUM_LAYERS - 1, NUM_CHOICES, NUM_CHOICES), 0.01)
    pairs[1, 1, 1] = -25.0
    data.update(schema="linas-lut/v2", fixed={"mean_ms": 2.0, "std_ms": 0.0},
                interactions={"method": "fit", "pairs": {
                    f"layer_{i}-layer_{i + 1}": pairs[i].tolist() for i in range(4)}})
    return data


def test_lut_whose_pairs_make_an_architecture_negative_is_refused(
        tmp_path: Path, v1_dict: Callable[[], dict[str, Any]]) -> None:
    path = tmp_path / "bad_pairs.json"
    path.write_text(json.dumps(_negative_somewhere(v1_dict)))
    with pytest.raises(LUTError) as info:
        load_lut(path)
    msg = str(info.value)
    # fastest: Conv3x3_w50 but Conv3x3_w75 at layers 1 and 2: 15 + 2.5 + 2 + 3 * 0.01 - 25
    arch = Arch((0, 1, 1, 0, 0))
    want = 1 + 2 * 1.5 + 3 * 1.5 + 4 + 5 + 2.0 + 0.01 * 3 - 25.0
    assert "\n" not in msg and str(path) in msg and str(arch) in msg
    assert f"{want:.4g} ms" in msg and "linas lut measure" in msg and "interactions" in msg
    found = check_lut_file(path)
    assert any(f.severity == "error" and str(arch) in f.message for f in found)


def test_model_built_from_an_in_memory_lut_is_checked_too(
        v1_dict: Callable[[], dict[str, Any]]) -> None:
    data = _negative_somewhere(v1_dict)
    ok = {k: v for k, v in data.items() if k != "interactions"}
    from linas.latency import lut_from_dict

    lut = lut_from_dict(ok)
    lut.interactions = np.asarray(
        [data["interactions"]["pairs"][f"layer_{i}-layer_{i + 1}"] for i in range(4)])
    with pytest.raises(LUTError, match=r"<memory>.*-5\.47 ms.*Conv3x3_w50-Conv3x3_w75-Conv3x3_w75"):
        LUTLatencyModel(lut)
    assert [f.code for f in check_lut(lut) if f.severity == "error"] == ["non-positive-model"]
    # the same table without its pairs, or as a decoder-only feature, is not a latency claim
    assert LUTLatencyModel(lut, use_interactions=False).minimum()[0] == 17.0
    LUTLatencyModel(lut, use_fixed=False)


def test_p95_from_entry_variances_hand_computed(v1_dict: Callable[[], dict[str, Any]]) -> None:
    from linas.latency import lut_from_dict

    data = v1_dict()
    ops = [data["layers"][f"layer_{i}"]["ops"] for i in range(NUM_LAYERS)]
    for i, std in enumerate((0.3, 0.4, 1.2, 0.0, 0.0)):  # sqrt(0.09 + 0.16 + 1.44) = 1.3
        ops[i]["Conv3x3_w50"]["std_ms"] = std
    ops[0]["DWSep3x3_w75"]["std_ms"] = 0.6  # with the fixed part's 0.8: sqrt(0.36 + 0.64) = 1
    for i in range(1, NUM_LAYERS):
        ops[i]["DWSep3x3_w75"]["std_ms"] = 0.0
    data.update(schema="linas-lut/v2", fixed={"mean_ms": 4.0, "std_ms": 0.8})
    lut = lut_from_dict(data)
    model = LUTLatencyModel(lut)
    a = Arch((0,) * 5)
    b = Arch((CHOICE_KEYS.index("DWSep3x3_w75"),) * 5)  # choice 10: (i + 1) * 6 ms each
    mean_a, mean_b = 15.0 + 4.0, 6.0 * 15 + 4.0
    assert model.latency(a) == mean_a and model.latency(b) == mean_b
    a_p95 = mean_a + 1.645 * np.sqrt(0.3 ** 2 + 0.4 ** 2 + 1.2 ** 2 + 0.8 ** 2)
    assert model.latency_p95(a) == pytest.approx(a_p95, rel=1e-12)
    np.testing.assert_allclose(model.p95(np.asarray([a.choices, b.choices])),
                               [a_p95, mean_b + 1.645 * 1.0], rtol=1e-12)
    decoder_only = LUTLatencyModel(lut, use_fixed=False)  # no fixed part, no fixed spread
    assert decoder_only.latency_p95(b) == pytest.approx(6.0 * 15 + 1.645 * 0.6, rel=1e-12)
