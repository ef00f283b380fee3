"""Shared fixtures: the reference LUT folder beside the repo, small deterministic tensors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REFERENCE_LUTS = Path(__file__).resolve().parents[1].parent / "shared" / "reference-luts"


@pytest.fixture(scope="session")
def reference_luts() -> Path:
    if not REFERENCE_LUTS.is_dir():
        pytest.skip(f"reference LUTs not found at {REFERENCE_LUTS} (../shared beside the repo)")
    return REFERENCE_LUTS


@pytest.fixture(autouse=True)
def _torch_threads() -> None:
    torch.set_num_threads(2)
