"""LUT loading: both schemas, and every refusal names the file and the key at fault."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from linas._errors import LUTError
from linas.latency import SCHEMA_V2, load_lut, lut_from_dict, save_lut
from linas.space import CHOICE_KEYS

REFERENCE_HARDWARE = {"a6000": "A6000", "rtx3090": "RTX3090", "rtx4090": "RTX4090",
                      "orin": "Orin", "raspberrypi5": "RaspberryPi5", "odroid": "Odroid"}


@pytest.mark.parametrize("stem", sorted(REFERENCE_HARDWARE))
def test_load_reference_v1(ref_dir: Path, stem: str) -> None:
    lut = load_lut(ref_dir / f"{stem}.json", expect_input_size=(128, 128))
    raw = json.loads((ref_dir / f"{stem}.json").read_text())
    assert lut.schema == "v1" and lut.hardware == REFERENCE_HARDWARE[stem] and lut.name == stem
    assert lut.mean_ms.shape == (5, 21) and np.all(lut.mean_ms > 0) and np.all(lut.std_ms >= 0)
    assert not lut.is_end_to_end and lut.median_ms is None and lut.count is None
    key = CHOICE_KEYS[7]
    assert lut.mean_ms[3, 7] == raw["layers"]["layer_3"]["ops"][key]["mean_ms"]


def test_load_v2_round_trip(tmp_path: Path, v1_dict: Callable[[], dict[str, Any]]) -> None:
    lut = lut_from_dict(v1_dict())
    lut.median_ms, lut.p95_ms = lut.mean_ms * 0.9, lut.mean_ms * 1.2
    lut.count, lut.fixed_ms, lut.fixed_std_ms = np.full((5, 21), 40), 3.5, 0.2
    lut.provenance = {"runtime": "torch", "threads": 4}
    back = load_lut(save_lut(lut, tmp_path / "v2.json"))
    assert back.schema == SCHEMA_V2 and back.is_end_to_end and back.provenance == lut.provenance
    for name in ("mean_ms", "std_ms", "median_ms", "p95_ms", "count"):
        np.testing.assert_array_equal(getattr(back, name), getattr(lut, name))


def _set(d: dict[str, Any], layer: int, key: str, stat: str, value: Any) -> dict[str, Any]:
    d["layers"][f"layer_{layer}"]["ops"][key][stat] = value
    return d


def _drop_entry(d: dict[str, Any]) -> dict[str, Any]:
    del d["layers"]["layer_3"]["ops"]["EdgeConv_w75"]
    return d


def _drop_layer(d: dict[str, Any]) -> dict[str, Any]:
    del d["layers"]["layer_4"]
    return d


BROKEN: dict[str, tuple[Callable[[dict[str, Any]], dict[str, Any]], list[str]]] = {
    "missing entry": (_drop_entry, ["layer_3", "EdgeConv_w75"]),
    "nan": (lambda d: _set(d, 1, "Conv5x5_w50", "mean_ms", float("nan")),
            ["layer_1.Conv5x5_w50.mean_ms", "nan"]),
    "negative": (lambda d: _set(d, 2, "DWSep3x3_w100", "std_ms", -0.5),
                 ["layer_2.DWSep3x3_w100.std_ms", "-0.5"]),
    "zero mean": (lambda d: _set(d, 0, "Conv3x3_w50", "mean_ms", 0),
                  ["layer_0.Conv3x3_w50.mean_ms"]),
    "bad count": (lambda d: _set(d, 0, "Conv3x3_w50", "count", float("nan")),
                  ["layer_0.Conv3x3_w50.count"]),
    "wrong schema": (lambda d: {**d, "schema": "linas-lut/v9"}, ["linas-lut/v9", "schema"]),
    "missing layer": (_drop_layer, ["layer_4"]),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_load_errors_name_file_and_key(tmp_path: Path, v1_dict: Callable[[], dict[str, Any]],
                                       case: str) -> None:
    mutate, needles = BROKEN[case]
    path = tmp_path / "broken_device.json"
    path.write_text(json.dumps(mutate(v1_dict())))
    with pytest.raises(LUTError) as info:
        load_lut(path)
    message = str(info.value)
    for needle in [str(path), *needles]:
        assert needle in message, f"{needle!r} not in {message!r}"


def test_load_wrong_input_size(tmp_path: Path, v1_dict: Callable[[], dict[str, Any]]) -> None:
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(v1_dict()))
    with pytest.raises(LUTError, match=r"dev\.json.*128x128.*256x256"):
        load_lut(path, expect_input_size=(256, 256))


def test_load_missing_file_and_bad_json(tmp_path: Path) -> None:
    with pytest.raises(LUTError, match="no such file"):
        load_lut(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(LUTError, match=r"bad\.json: not valid JSON"):
        load_lut(tmp_path / "bad.json")
