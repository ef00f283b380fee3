"""A device's latency fingerprint: the 10 reference architectures timed, decoder only, for
onboarding it with the cross-hardware predictor (:mod:`linas.latency.onboard`)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from linas._errors import ConfigError
from linas.latency.fingerprint import REFERENCE_ARCHS
from linas.latency.measure import cpu_name, time_in_runtime
from linas.latency.onboard import Fingerprint
from linas.latency.runtimes import get_runtime
from linas.profiling.runners import build_supernet


def measure_fingerprint(size: tuple[int, int], runtime: str, device: str, threads: int | None,
                        warmup: int, repeat: int, name: str | None) -> Fingerprint:
    """Time the 10 reference architectures, decoder only, on this machine.

    Each architecture runs as its five candidates chained (exactly the modules the LUT times),
    from a (1, 1024, H/32, W/32) input, so the fingerprint is what the LUT sum predicts.

    Args:
        size: input (H, W) of the model the fingerprint stands for.
        runtime: registered runtime name (``torch``, ``onnxruntime``, ``openvino``).
        device: ``cpu`` or ``cuda``.
        threads: intra-op threads; None keeps the runtime's default.
        warmup: untimed calls per architecture.
        repeat: timed calls per architecture (>= 3).
        name: device name recorded (default ``local_<runtime>_<device>``).

    Raises:
        ConfigError: bad warm-up / repeat counts, or a runtime that cannot run here.
    """
    if warmup < 0 or repeat < 3:
        raise ConfigError("--warmup must be >= 0 and --repeat >= 3 (IQR filtering needs samples)")
    rt = get_runtime(runtime, device, threads)
    net = build_supernet(device)
    x = torch.randn(1, 1024, size[0] // 32, size[1] // 32, device=device)
    cands = [(nn.Sequential(*(net.candidate(i, c) for i, c in enumerate(a.choices))), x)
             for a in REFERENCE_ARCHS]
    stats = time_in_runtime(rt, cands, warmup, repeat)
    dev_name = torch.cuda.get_device_name() if device == "cuda" else cpu_name()
    prov = {**rt.provenance(), "device": dev_name, "warmup": warmup, "repeat": repeat,
            "mode": "decoder-only: the five candidates chained"}
    return Fingerprint(name or f"local_{runtime}_{device}",
                       np.asarray([s.mean_ms for s in stats]),
                       np.asarray([s.std_ms for s in stats]), size, prov)
