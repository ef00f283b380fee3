"""Profiling: its public surface, its place in the layering, and a tiny supernet LUT measured
end to end (the 105 candidates, the fixed part and the anchor)."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest

import linas.profiling as profiling
from linas.latency import LUTLatencyModel
from linas.progress import Reporter
from linas.space import NUM_CHOICES, NUM_LAYERS


def test_public_surface() -> None:
    from linas.profiling import DEMO_FIT_ARCHS, measure_supernet_lut

    assert DEMO_FIT_ARCHS == 40
    assert list(inspect.signature(measure_supernet_lut).parameters) == [
        "net", "size", "warmup", "repeat", "threads", "hardware", "rep", "runtime",
        "interactions", "fit_archs", "prepare"]
    assert all(hasattr(profiling, name) for name in profiling.__all__)


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return {m for m in out.split() if m.startswith("linas")}


def test_layering() -> None:
    """latency never imports the supernet or profiling; profiling imports no upper layer."""
    latency = _modules_after("import linas.latency")
    assert not {m for m in latency if m.startswith(("linas.supernet", "linas.profiling"))}
    upper = ("linas.cli", "linas.run", "linas.search", "linas.pareto", "linas.pipeline")
    assert not {m for m in _modules_after("import linas.profiling") if m.startswith(upper)}


def test_unknown_interaction_method_is_refused_before_timing() -> None:
    from linas._errors import ConfigError

    with pytest.raises(ConfigError, match="interactions 'pairs': valid: none, fit, full"):
        profiling.measure_supernet_lut(None, (32, 32), 0, 3, 1, "x",  # type: ignore[arg-type]
                                       Reporter(quiet=True), interactions="pairs")


@pytest.mark.slow
def test_tiny_supernet_lut_is_complete_and_positive() -> None:
    net = profiling.build_supernet("cpu")
    lut = profiling.measure_supernet_lut(net, (32, 32), 0, 3, 1, "tiny", Reporter(quiet=True))
    assert lut.mean_ms.shape == (NUM_LAYERS, NUM_CHOICES) and np.all(lut.mean_ms > 0)
    assert lut.fixed_ms is not None and lut.fixed_ms > 0 and lut.input_size == (32, 32)
    assert lut.provenance["anchor"]["ms"] > 0 and lut.provenance["build_s"]["total"] > 0
    assert LUTLatencyModel(lut).minimum()[0] > lut.fixed_ms
