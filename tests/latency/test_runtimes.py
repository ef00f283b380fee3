"""Runtimes: the registry, and each runtime times a tiny module (OpenVINO if installed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from linas._errors import ConfigError
from linas.latency.measure import measure_lut, time_in_runtime
from linas.latency.runtimes import RUNTIMES, available_runtimes, get_runtime
from linas.space import NUM_CHOICES, NUM_LAYERS


def _tiny() -> tuple[nn.Module, torch.Tensor]:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()), torch.randn(1, 3, 8, 8)


def _runtime_or_skip(name: str):
    reason = RUNTIMES.get(name).unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    return get_runtime(name, "cpu", threads=1)


@pytest.mark.parametrize("name", RUNTIMES.names())
def test_runtime_times_a_tiny_module(name: str) -> None:
    rt = _runtime_or_skip(name)
    module, x = _tiny()
    module.train()
    stats = time_in_runtime(rt, [(module, x), _tiny()], warmup=1, repeat=3, rounds=1)
    assert len(stats) == 2 and all(s.mean_ms > 0 and 1 <= s.count <= 3 for s in stats)
    assert module.training  # train/eval flags restored
    prov = rt.provenance()
    assert prov["runtime"] == name and prov["threads"] == 1 and prov["runtime_version"]


def test_onnxruntime_output_matches_torch() -> None:
    rt = get_runtime("onnxruntime", "cpu", threads=1)
    module, x = _tiny()
    out = rt.prepare(module, x).run()[0]
    with torch.no_grad():
        np.testing.assert_allclose(out, module(x).numpy(), atol=1e-5)


def test_measure_lut_in_onnxruntime_records_runtime() -> None:
    rt = get_runtime("onnxruntime", "cpu", threads=1)
    conv = nn.Conv2d(2, 2, 1)
    lut = measure_lut(lambda layer, c: (conv, torch.randn(1, 2, 4, 4)), "tiny", (64, 64),
                      warmup=0, repeat=3, rounds=1, runtime=rt)
    assert lut.mean_ms.shape == (NUM_LAYERS, NUM_CHOICES) and np.all(lut.mean_ms > 0)
    prov = lut.provenance
    assert prov["runtime"] == "onnxruntime" and prov["threads"] == 1
    assert prov["runtime_version"] != prov["torch_version"]
    # idle pools must not spin: 21 live sessions would steal each other's cores
    assert prov["intra_op_spinning"] is False


def test_unknown_runtime_lists_the_menu() -> None:
    with pytest.raises(ConfigError, match=r"unknown runtime 'onnx'.*valid: onnxruntime, "
                                          r"openvino, torch"):
        get_runtime("onnx")


def test_bad_device_and_threads() -> None:
    with pytest.raises(ConfigError, match="use --runtime torch for cuda"):
        get_runtime("onnxruntime", "cuda")
    with pytest.raises(ConfigError, match="--threads 0"):
        get_runtime("torch", "cpu", 0)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            get_runtime("torch", "cuda")


def test_missing_openvino_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    cls = RUNTIMES.get("openvino")
    monkeypatch.setattr(cls, "unavailable_reason", classmethod(lambda c: "openvino is not "
                                                               "installed; pip install x"))
    with pytest.raises(ConfigError, match="runtime 'openvino': openvino is not installed"):
        get_runtime("openvino")
    assert "openvino" not in available_runtimes()


@pytest.mark.gpu
def test_torch_cuda_times_with_sync() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    rt = get_runtime("torch", "cuda", None)
    module, x = _tiny()
    runner = rt.prepare(module, x)
    assert runner.sync is not None
    stats = time_in_runtime(rt, [(module, x)], warmup=2, repeat=5, rounds=1)
    assert stats[0].mean_ms > 0 and rt.provenance()["device_type"] == "cuda"


def test_runtimes_are_a_registry() -> None:
    from linas.latency.runtimes import TorchRuntime

    assert RUNTIMES.names() == ["torch", "onnxruntime", "openvino"]
    assert all(RUNTIMES.get(n).name == n for n in RUNTIMES)
    with pytest.raises(ValueError, match="runtime 'torch' is registered twice"):
        RUNTIMES.add("torch", TorchRuntime)
    with pytest.raises(ConfigError, match=r"'torh' \(did you mean 'torch'\?\)"):
        get_runtime("torh")
