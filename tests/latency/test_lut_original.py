"""LUT files of the original LINAS code (hopo55/Seg-NAS ``lut_builder.py``) load as they are:
``"480x640"`` / ``input_h`` + ``input_w`` sizes, extra widths and ops ignored in one line; the
input size must match the run's."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from linas._errors import LUTError
from linas.latency import LUTLatencyModel, check_lut, check_lut_file, load_lut, lut_from_dict
from linas.space import CHOICE_KEYS, LAYERS

# What the original builder measures: 7 ops of this space plus two SE variants, 5 widths.
ORIGINAL_OPS = {"Conv3x3": 1.0, "Conv5x5": 2.6, "Conv7x7": 5.1, "DWSep3x3": 0.35,
                "DWSep5x5": 0.45, "EdgeConv": 1.15, "DilatedDWSep": 0.4, "Conv3x3_SE": 1.1,
                "DWSep3x3_SE": 0.45}
ORIGINAL_WIDTHS = (25, 50, 75, 100, 125)
LAYER_BASE_MS = (2.1, 3.3, 4.6, 7.2, 10.4)  # a CPU-like device at 480x640
EXTRA_PER_LAYER = len(ORIGINAL_OPS) * len(ORIGINAL_WIDTHS) - len(CHOICE_KEYS)  # 24


def original_lut(h: int = 480, w: int = 640) -> dict[str, Any]:
    """A LUT as the original code writes it for an h x w input (its key order and rounding)."""
    layers: dict[str, Any] = {}
    lo = hi = 0.0
    for i, spec in enumerate(LAYERS):
        ops = {}
        for op, factor in ORIGINAL_OPS.items():
            for width in ORIGINAL_WIDTHS:
                mean = LAYER_BASE_MS[i] * factor * (0.1 + 0.9 * width / 100)
                ops[f"{op}_w{width}"] = {"mean_ms": round(mean, 4),
                                         "std_ms": round(0.02 * mean, 4)}
        means = [e["mean_ms"] for e in ops.values()]
        lo, hi = lo + min(means), hi + max(means)
        layers[f"layer_{i}"] = {"C_in": spec.c_in, "C_out": spec.c_out,
                                "H_out": h // spec.out_stride, "W_out": w // spec.out_stride,
                                "ops": ops}
    return {"hardware": "Orin", "input_size": f"{h}x{w}", "input_h": h, "input_w": w,
            "warmup": 200, "repeat": 300, "layers": layers,
            "latency_range": {"min_ms": round(lo, 4), "max_ms": round(hi, 4)}}


def _size_only(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in ("input_h", "input_w")}


def _hw_only(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != "input_size"}


def _list_size(d: dict[str, Any]) -> dict[str, Any]:
    return {**_size_only(d), "input_size": [480, 640]}


VARIANTS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "as written (string + input_h/input_w)": lambda d: d,
    "string only": _size_only,
    "input_h/input_w only": _hw_only,
    "[H, W]": _list_size,
}


def _write(tmp_path: Path, data: dict[str, Any], name: str = "orin_480x640.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=2))
    return path


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_original_480x640_lut_loads(tmp_path: Path, variant: str) -> None:
    raw = original_lut()
    path = _write(tmp_path, VARIANTS[variant](copy.deepcopy(raw)))
    lut = load_lut(path, expect_input_size=(480, 640))
    assert lut.input_size == (480, 640) and lut.hardware == "Orin" and lut.schema == "v1"
    for i in range(5):
        for c, key in enumerate(CHOICE_KEYS):
            assert lut.mean_ms[i, c] == raw["layers"][f"layer_{i}"]["ops"][key]["mean_ms"]
    assert len(lut.ignored_entries) == 5 * EXTRA_PER_LAYER == 120
    assert "layer_0.Conv3x3_w25" in lut.ignored_entries
    assert "layer_4.DWSep3x3_SE_w125" in lut.ignored_entries
    model = LUTLatencyModel(lut)
    assert model.minimum()[0] > 0 and model.bounds()[0] == model.minimum()[0]


def test_ignored_entries_are_one_line(tmp_path: Path) -> None:
    lut = load_lut(_write(tmp_path, original_lut()))
    summary = lut.ignored_summary()
    assert summary is not None and "\n" not in summary
    for needle in ("orin_480x640.json", "120 entries", "w25", "w125", "Conv3x3_SE",
                   "DWSep3x3_SE", "layer_0.Conv3x3_w25"):
        assert needle in summary, (needle, summary)
    assert summary.count("layer_") <= 3  # a few examples, not every key
    assert lut_from_dict(original_lut(128, 128)).ignored_summary() is not None
    clean = {**original_lut(128, 128)}
    for layer in clean["layers"].values():
        layer["ops"] = {k: v for k, v in layer["ops"].items() if k in CHOICE_KEYS}
    assert lut_from_dict(clean).ignored_summary() is None


def test_original_lut_passes_the_checker(tmp_path: Path) -> None:
    found = check_lut_file(_write(tmp_path, original_lut()))
    assert not [f for f in found if f.severity == "error"], found
    ignored = [f for f in found if f.code == "ignored-entries"]
    assert len(ignored) == 1 and ignored[0].severity == "info" and "120" in ignored[0].message
    # its latency_range covers the extra widths too: not reported as wrong
    assert not any(f.code == "latency-range" for f in found)


def test_missing_entry_of_the_space_is_still_an_error(tmp_path: Path) -> None:
    data = original_lut()
    del data["layers"]["layer_2"]["ops"]["Conv5x5_w75"]
    path = _write(tmp_path, data)
    with pytest.raises(LUTError, match=r"orin_480x640\.json: layer_2 lacks 'Conv5x5_w75'"):
        load_lut(path)


@pytest.mark.parametrize(("mutate", "needles"), [
    (lambda d: {**d, "input_h": 512}, ["'input_size' says 480x640", "512x640"]),
    (lambda d: {**_size_only(d), "input_size": "480 by 640"}, ["'480 by 640'", "HxW"]),
    (lambda d: {**_hw_only(d), "input_w": None}, ["'input_h'/'input_w'", "None"]),
    (lambda d: _hw_only(_size_only(d)), ["lacks the key 'input_size'"]),
    (lambda d: {**d, "input_size": "480x600", "input_w": 600}, ["layer_0.W_out is 40",
                                                                "expected 37"]),
])
def test_bad_or_contradictory_sizes_are_one_clear_line(
        tmp_path: Path, mutate: Callable[[dict[str, Any]], dict[str, Any]],
        needles: list[str]) -> None:
    path = _write(tmp_path, mutate(original_lut()))
    with pytest.raises(LUTError) as info:
        load_lut(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    for needle in needles:
        assert needle in msg, (needle, msg)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_input_size_must_match_the_run(tmp_path: Path, variant: str) -> None:
    path = _write(tmp_path, VARIANTS[variant](original_lut()))
    with pytest.raises(LUTError) as info:
        load_lut(path, expect_input_size=(128, 128))
    msg = str(info.value)
    for needle in (str(path), "480x640", "128x128", "linas lut measure --size 128x128"):
        assert needle in msg, (needle, msg)
    assert "\n" not in msg


def test_square_int_and_reference_luts_match_128(ref_dir: Path, tmp_path: Path) -> None:
    load_lut(ref_dir / "orin.json", expect_input_size=(128, 128))
    with pytest.raises(LUTError, match=r"orin\.json: measured at input 128x128.*480x640"):
        load_lut(ref_dir / "orin.json", expect_input_size=(480, 640))
    square = _write(tmp_path, {**_hw_only(original_lut(128, 128)), "input_size": 128}, "sq.json")
    assert load_lut(square, expect_input_size=(128, 128)).input_size == (128, 128)


def test_check_lut_reports_the_wrong_size_as_an_error(tmp_path: Path) -> None:
    lut = load_lut(_write(tmp_path, original_lut()))
    found = check_lut(lut, expect_input_size=(128, 128))
    errors = [f for f in found if f.severity == "error"]
    assert [f.code for f in errors] == ["input-size"] and "480x640" in errors[0].message
    assert not [f for f in check_lut(lut, expect_input_size=(480, 640))
                if f.severity == "error"]


def test_loaded_original_lut_saves_as_v2_without_the_extras(tmp_path: Path) -> None:
    from linas.latency import save_lut

    lut = load_lut(_write(tmp_path, original_lut()))
    back = load_lut(save_lut(lut, tmp_path / "v2.json"), expect_input_size=(480, 640))
    assert back.ignored_entries == [] and np.array_equal(back.mean_ms, lut.mean_ms)
