"""Hardware specs: explicit name mapping, errors with the menu, features, local CPU parsing."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from linas._errors import ConfigError
from linas.latency import load_lut, lut_from_dict
from linas.latency.hardware import (
    FEATURE_NAMES,
    _local_from,
    known_names,
    known_specs,
    parse_cpuinfo,
    parse_lscpu_cache_mb,
    spec_features,
    spec_for_lut,
    spec_for_name,
)
from linas.latency.measure import cpu_name

from .conftest import REF_NAMES

CPUINFO = """processor\t: 0
model name\t: Test CPU 9000
cpu MHz\t\t: 2500.000
flags\t\t: fpu sse avx2 fma
processor\t: 1
model name\t: Test CPU 9000
cpu MHz\t\t: 2500.000
flags\t\t: fpu sse avx2 fma
"""
LSCPU = "L1d cache:  96 KiB (2 instances)\nL2 cache:   2 MiB (2 instances)\nL3 cache:   32 MiB"


def test_every_reference_lut_maps_by_hardware_field_and_stem(ref_dir: Path) -> None:
    for stem in REF_NAMES:
        lut = load_lut(ref_dir / f"{stem}.json")
        by_field, by_stem = spec_for_name(lut.hardware), spec_for_name(stem)
        assert by_field == by_stem == spec_for_lut(lut)
        assert by_field.peak_fp32_gflops.value and by_field.peak_fp32_gflops.source


def test_unknown_name_lists_the_known_names() -> None:
    with pytest.raises(ConfigError) as err:
        spec_for_name("JetsonNano")
    msg = str(err.value)
    assert "JetsonNano" in msg and "--allow-unknown" in msg
    for name in ("A6000", "Orin", "RaspberryPi5", "Odroid"):
        assert name in msg


def test_no_loose_matching() -> None:
    # a near-miss spelling is an error (with a suggestion), never silently mapped
    with pytest.raises(ConfigError, match="did you mean"):
        spec_for_name("RTX_4090")


def test_unknown_lut_error_or_warning(v1_dict) -> None:  # type: ignore[no-untyped-def]
    lut = lut_from_dict({**v1_dict(), "hardware": "Mystery"}, source="mystery.json")
    with pytest.raises(ConfigError, match="LUT mystery.json: unknown hardware 'Mystery'"):
        spec_for_lut(lut)
    with pytest.warns(UserWarning, match="no spec"):
        spec = spec_for_lut(lut, allow_unknown=True)
    assert spec.kind == "unknown" and np.all(np.isfinite(spec_features(spec)))


def test_orin_is_recorded_as_cpu_like_with_its_gpu() -> None:
    orin = spec_for_name("Orin")
    assert orin.kind == "cpu" and "gpu" in orin.processors and "cpu" in orin.processors
    assert any("CPU measurement" in n for n in orin.notes)
    odroid = spec_for_name("Odroid")
    assert odroid.peak_fp32_gflops.uncertain and any("unknown" in n for n in odroid.notes)


def test_features_are_log_scaled_and_finite() -> None:
    for spec in known_specs().values():
        f = spec_features(spec)
        assert f.shape == (len(FEATURE_NAMES),) and np.all(np.isfinite(f))
        assert f[3] == (1.0 if spec.kind == "gpu" else 0.0)
    assert spec_features(spec_for_name("A6000"))[0] == pytest.approx(np.log10(38700))
    assert "A6000" in known_names() and "a6000" in known_names()


def test_local_cpu_parsing_and_threads() -> None:
    info = parse_cpuinfo(CPUINFO)
    assert info["model"] == "Test CPU 9000" and info["cpus"] == 2 and info["mhz"] == 2500.0
    assert parse_lscpu_cache_mb(LSCPU) == 32.0
    spec = _local_from(info, 32.0, threads=1, runtime="onnxruntime", name="t")
    assert spec.peak_fp32_gflops.value == pytest.approx(2 * 2.5 * 32)  # avx2: 32 FLOP/cycle
    assert spec.effective_peak_gflops == pytest.approx(2.5 * 32)  # one of two cores in use
    assert spec.memory_bandwidth_gbs.value is None  # unknowable: imputed in the features
    assert np.all(np.isfinite(spec_features(spec)))


def test_lut_measured_here_maps_to_the_local_spec(v1_dict) -> None:  # type: ignore[no-untyped-def]
    data = {**v1_dict(), "hardware": "local_torch_cpu_t2",
            "provenance": {"device_type": "cpu", "device": cpu_name(), "threads": 2,
                           "runtime": "torch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec = spec_for_lut(lut_from_dict(data, source="x/local_torch_cpu_t2.json"))
    assert spec.key == "local-cpu" and spec.threads == 2 and spec.runtime == "torch"
