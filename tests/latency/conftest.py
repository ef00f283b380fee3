"""Fixtures for the latency tests: the shared reference LUTs and a synthetic v1 table."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from linas.space import CHOICE_KEYS, LAYERS

# The reference LUTs live in the `shared` folder beside the repository, not in it.
REF_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "reference-luts"
REF_NAMES = ("a6000", "rtx3090", "rtx4090", "orin", "raspberrypi5", "odroid")


@pytest.fixture(scope="session")
def ref_dir() -> Path:
    """The reference-LUT folder; skips the test when it is absent."""
    if not all((REF_DIR / f"{n}.json").is_file() for n in REF_NAMES):
        pytest.skip(f"reference LUTs not found in {REF_DIR} (expected ../shared/reference-luts "
                    "beside the repository)")
    return REF_DIR


_V1: dict[str, Any] = {
    "hardware": "Synthetic",
    "input_size": 128,
    "warmup": 2,
    "repeat": 5,
    "layers": {
        f"layer_{i}": {
            "C_in": spec.c_in, "C_out": spec.c_out,
            "H_out": 128 // spec.out_stride, "W_out": 128 // spec.out_stride,
            # Monotonic in width and well separated, tight std: a clean CPU-like table.
            "ops": {key: {"mean_ms": (i + 1) * (1.0 + 0.5 * c), "std_ms": 0.01}
                    for c, key in enumerate(CHOICE_KEYS)},
        }
        for i, spec in enumerate(LAYERS)
    },
}


@pytest.fixture
def v1_dict() -> Callable[[], dict[str, Any]]:
    """Factory of fresh, valid, schema-v1 LUT dicts (deep copies, safe to mutate)."""
    return lambda: copy.deepcopy(_V1)
