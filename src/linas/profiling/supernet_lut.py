"""Measuring a supernet's LUT: the 105 candidates and the fixed part timed in a runtime, the
anchor time, and optional interaction terms (:mod:`linas.profiling.terms`)."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from linas._errors import ConfigError
from linas.latency.lut import LUT
from linas.latency.measure import measure_lut
from linas.latency.runtimes import OnnxModelRuntime, Runtime, get_runtime
from linas.latency.validate import ANCHOR_CHOICES, time_architectures
from linas.profiling.runners import ArchRunners, layer_inputs
from linas.profiling.terms import (
    FIT_SEED,
    add_context_interactions,
    add_fitted_interactions,
    add_pair_interactions,
)
from linas.progress import Reporter
from linas.space import LAYERS, NUM_CHOICES, Arch
from linas.supernet import FixedPart, Supernet

INTERACTION_METHODS = ("none", "fit", "full", "context")
FIT_ARCHS = 40
DEMO_FIT_ARCHS = 40  # the demo's local LUT: 24 over-fitted the per-layer scales (+60% on one arch)


def measure_supernet_lut(net: Supernet, size: tuple[int, int], warmup: int, repeat: int,
                         threads: int | None, hardware: str, rep: Reporter,
                         runtime: Runtime | None = None, interactions: str = "none",
                         fit_archs: int = FIT_ARCHS, prepare: ArchRunners | None = None) -> LUT:
    """Time the 105 candidates of ``net`` and its fixed part at input ``size`` in ``runtime``.

    Args:
        net: the supernet whose candidates run in the model.
        size: input (H, W).
        warmup: untimed calls per entry.
        repeat: timed calls per entry.
        threads: intra-op threads (used when ``runtime`` is None: torch on ``net``'s device).
        hardware: the device name recorded.
        rep: progress reporter.
        runtime: where to time; default torch eager on ``net``'s device.
        interactions: ``none``, ``fit`` (ridge fit on ``fit_archs`` end-to-end runs),
            ``full`` (every adjacent pair timed) or ``context`` (the anchor's one-layer
            changes timed end to end).
        fit_archs: fitting sample size for ``fit``.
        prepare: end-to-end runners of ``net`` in ``runtime`` (built here when None; pass
            one to reuse its exported encoder for further end-to-end timing).

    Returns:
        The LUT; ``provenance['build_s']`` holds the build times in seconds.

    Raises:
        ConfigError: an unknown ``interactions`` method.
    """
    if interactions not in INTERACTION_METHODS:
        raise ConfigError(f"interactions '{interactions}': valid: {', '.join(INTERACTION_METHODS)}")
    h, w = size
    dev = next(net.parameters()).device
    rt = runtime or get_runtime("torch", dev.type, threads)
    inputs = layer_inputs(size, dev)
    start = time.perf_counter()
    with rep.task(f"measuring LUT ({hardware}, {rt.name})", len(inputs) * NUM_CHOICES + 1) as adv:
        lut = measure_lut(lambda layer, c: (net.candidate(layer, c), inputs[layer]), hardware,
                          size, warmup, repeat, threads,
                          fixed=lambda: (_fixed_part(net, rt, size),
                                         torch.randn(1, 3, h, w, device=dev)),
                          progress=lambda done, total: adv(1), runtime=rt)
    prepare = prepare or ArchRunners(net, rt, size)
    # the machine's speed now: validation and fits are expressed at it (drift_correct)
    anchor_ms = float(time_architectures(prepare, np.asarray([ANCHOR_CHOICES]), rt, warmup,
                                         repeat, anchor=None)[0])
    lut.provenance["anchor"] = {"arch": str(Arch(ANCHOR_CHOICES)), "ms": round(anchor_ms, 5)}
    ops_s = time.perf_counter() - start
    if interactions == "fit":
        lut = add_fitted_interactions(lut, net, rt, fit_archs, FIT_SEED, warmup, repeat, rep,
                                      prepare)
    elif interactions == "full":
        lut = add_pair_interactions(lut, net, rt, warmup, repeat, rep)
    elif interactions == "context":
        lut = add_context_interactions(lut, rt, warmup, repeat, rep, prepare)
    total = time.perf_counter() - start
    lut.provenance["build_s"] = {"ops_and_fixed": round(ops_s, 1),
                                 "interactions": round(total - ops_s, 1),
                                 "total": round(total, 1)}
    return lut


def _fixed_part(net: Supernet, runtime: Runtime, size: tuple[int, int]) -> nn.Module:
    """The fixed part as the runtime should time it (see :class:`_GraphFixedPart`)."""
    return _GraphFixedPart(net, size) if isinstance(runtime, OnnxModelRuntime) else FixedPart(net)


class _GraphFixedPart(nn.Module):
    """:class:`FixedPart` for graph runtimes: encoder, the four skip fusions and the classifier.

    FixedPart feeds zeros to the classifier, which an ONNX exporter folds into a constant,
    dropping the encoder and fusions with it. Here the decoder activations are random buffers,
    every fusion output is a graph output, and the classifier's input is scaled by a
    data-dependent scalar (one tiny multiply), so nothing can be folded away.
    """

    def __init__(self, net: Supernet, size: tuple[int, int]) -> None:
        super().__init__()
        self.encoder, self.head = net.encoder, net.head
        gen = torch.Generator().manual_seed(0)
        for i, spec in enumerate(LAYERS):
            shape = (1, spec.c_out, size[0] // spec.out_stride, size[1] // spec.out_stride)
            self.register_buffer(f"act{i}", torch.rand(shape, generator=gen))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.encoder(x)
        acts = [getattr(self, f"act{i}") for i in range(len(LAYERS))]
        fused = [self.head.fuse(i, acts[i], feats) for i in range(len(LAYERS) - 1)]
        scale = 1.0 + 0.0 * x[:, :1, :1, :1]  # (1, 1, 1, 1), data-dependent
        return (*fused, self.head.classifier(acts[-1] * scale))
