"""Shared fixtures: the reference LUT folder beside the repo, small deterministic tensors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from linas.pareto import non_dominated_mask
from linas.space import Arch

REFERENCE_LUTS = Path(__file__).resolve().parents[1].parent / "shared" / "reference-luts"


@pytest.fixture(scope="session")
def reference_luts() -> Path:
    if not REFERENCE_LUTS.is_dir():
        pytest.skip(f"reference LUTs not found at {REFERENCE_LUTS} (../shared beside the repo)")
    return REFERENCE_LUTS


@pytest.fixture(autouse=True)
def _torch_threads() -> None:
    torch.set_num_threads(2)


def _check_device_result(out: Path, name: str, dev: dict[str, Any]) -> None:
    """One device of a run's results.json: a non-empty non-dominated front of valid
    architectures, a hypervolume, a selection with its budget verdict, and its plot."""
    assert dev["front"], name
    lat = [p["latency_ms"] for p in dev["front"]]
    acc = [p["miou"] for p in dev["front"]]
    assert non_dominated_mask(lat, acc).all(), name
    for p in dev["front"]:
        Arch.parse(p["arch"])
    assert dev["hypervolume"] >= 0 and len(dev["hv_reference"]) == 2
    sel = dev["selected"]
    assert set(sel) >= {"arch", "latency_ms", "miou", "meets_budget"}
    assert sel["meets_budget"] == (sel["latency_ms"] <= dev["budget_ms"])
    assert (out / "plots" / f"pareto_{name}.png").is_file()


@pytest.fixture
def check_device_result():
    """The results.json per-device contract check, shared by the demo tests."""
    return _check_device_result
