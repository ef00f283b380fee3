"""LUT measurement and validation as commands: the glue between the supernet and
:mod:`linas.latency` (which times any module it is handed and never imports the supernet).

* :func:`measure_supernet_lut` times the 105 candidates and the fixed part in a runtime and
  optionally adds interaction terms (``fit`` from end-to-end runs, or ``full`` pairs).
* :func:`validate_lut` times held-out extracted architectures end to end and reports
  (a) op sum, (b) + fixed part, (c) + interactions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from linas._errors import ConfigError, LUTError
from linas.latency import LUT, load_lut, save_lut
from linas.latency.interactions import (
    context_design,
    context_marginals,
    context_terms,
    fit_interactions,
    measure_pairs,
    pair_interactions,
)
from linas.latency.lut import write_json_atomic
from linas.latency.measure import measure_lut
from linas.latency.runtimes import (
    OnnxModelRuntime,
    Runner,
    Runtime,
    export_onnx_bytes,
    get_runtime,
)
from linas.latency.validate import (
    ANCHOR_CHOICES,
    DRIFT_WARN,
    check_disjoint,
    drift_correct,
    format_table,
    sample_architectures,
    time_architectures,
    validation_report,
)
from linas.progress import Reporter
from linas.space import LAYERS, NUM_CHOICES, Arch, SearchSpace, choices_to_ids, ids_to_choices
from linas.supernet import FixedPart, Supernet
from linas.supernet.supernet import SegmentationModel

INTERACTION_METHODS = ("none", "fit", "full", "context")
FIT_SEED = 1_000  # architectures sampled for fitting; validation uses VALIDATE_SEED
VALIDATE_SEED = 2_000
FIT_ARCHS = 40
DEMO_FIT_ARCHS = 40  # the demo's local LUT: 24 over-fitted the per-layer scales (+60% on one arch)


def measure_command(out: Path, size: tuple[int, int], runtime: str, device: str,
                    threads: int | None, warmup: int, repeat: int, name: str | None,
                    quiet: bool, interactions: str = "none", fit_archs: int = FIT_ARCHS) -> Path:
    """Measure a v2 LUT with its fixed part (and optional interactions); write it to ``out``."""
    if interactions not in INTERACTION_METHODS:
        raise ConfigError(f"--interactions '{interactions}': valid: "
                          f"{', '.join(INTERACTION_METHODS)}")
    if warmup < 0 or repeat < 3:
        raise ConfigError("--warmup must be >= 0 and --repeat >= 3 (IQR filtering needs samples)")
    if interactions == "fit" and fit_archs < 10:
        raise ConfigError(f"--fit-archs {fit_archs}: need >= 10 architectures to fit")
    rt = get_runtime(runtime, device, threads)
    rep = Reporter(quiet)
    net = _supernet(device)
    lut = measure_supernet_lut(net, size, warmup, repeat, threads,
                               name or f"local_{runtime}_{device}", rep, runtime=rt,
                               interactions=interactions, fit_archs=fit_archs)
    save_lut(lut, out)
    rep.info(f"wrote {out} in {lut.provenance['build_s']['total']:.0f} s")
    return out


def _supernet(device: str) -> Supernet:
    torch.manual_seed(0)  # weights do not change dense-op latency, but keep runs identical
    return Supernet(num_classes=3).to(device).eval()


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
        interactions: ``none``, ``fit`` (ridge fit on ``fit_archs`` end-to-end runs) or
            ``full`` (every adjacent pair timed).
        fit_archs: fitting sample size for ``fit``.
        prepare: end-to-end runners of ``net`` in ``runtime`` (built here when None; pass
            one to reuse its exported encoder for further end-to-end timing).

    Returns:
        The LUT; ``provenance['build_s']`` holds the build times in seconds.
    """
    h, w = size
    dev = next(net.parameters()).device
    rt = runtime or get_runtime("torch", dev.type, threads)
    inputs = _layer_inputs(size, dev)
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


def _layer_inputs(size: tuple[int, int], dev: torch.device) -> list[torch.Tensor]:
    # layer i sees the previous output: C_in at half its own output size
    h, w = size
    return [torch.randn(1, s.c_in, h // (2 * s.out_stride), w // (2 * s.out_stride), device=dev)
            for s in SearchSpace().layers]


def add_fitted_interactions(lut: LUT, net: Supernet, runtime: Runtime, n_archs: int, seed: int,
                            warmup: int, repeat: int, rep: Reporter,
                            prepare: ArchRunners | None = None) -> LUT:
    """Time ``n_archs`` seeded random architectures end to end and fit the pair terms.

    Timings are drift-corrected to the LUT's anchor time when it has one
    (``provenance['anchor']``), else to the median anchor of the run.
    """
    choices = sample_architectures(n_archs, seed)
    prepare = prepare or ArchRunners(net, runtime, lut.input_size)
    with rep.task(f"end-to-end timing of {n_archs} fitting architectures", n_archs) as adv:
        anchors: list[float] = []
        raw = time_architectures(prepare, choices, runtime, warmup, repeat,
                                 tick=lambda: adv(1), anchor_log=anchors)
    reference = _anchor_ms(lut)
    measured = drift_correct(raw, anchors, reference)
    ref = reference if reference is not None else float(np.median(anchors))
    drift = _warn_drift(anchors, ref, "fitting the interaction terms", rep)
    fit = fit_interactions(lut.mean_ms, lut.fixed_ms or 0.0, choices, measured)
    prov = {**lut.provenance, "interactions": {
        "method": "fit", "seed": seed, "n_archs": n_archs, "alpha": fit.alpha,
        "cv_mape": fit.cv_mape, "terms": fit.terms, "cv_mape_by_terms": fit.cv_by_terms,
        "intercept_ms": fit.intercept,
        "layer_scales": [round(float(s), 4) for s in fit.scales],
        "arch_ids": choices_to_ids(choices).tolist(),
        "measured_ms": [round(float(m), 5) for m in measured],
        "raw_ms": [round(float(m), 5) for m in raw], "anchor_ms": _per_group(anchors),
        "max_drift": round(drift, 4)}}
    return replace(lut, interactions=fit.pairs, interaction_method="fit", provenance=prov)


def add_context_interactions(lut: LUT, runtime: Runtime, warmup: int, repeat: int,
                             rep: Reporter, prepare: ArchRunners) -> LUT:
    """Time the 100 one-layer changes of the anchor end to end; fold their in-graph marginal
    costs into the pair table (:func:`linas.latency.interactions.context_terms`)."""
    rows = context_design(ANCHOR_CHOICES)
    with rep.task("end-to-end timing of the anchor's 100 one-layer changes", len(rows)) as adv:
        anchors: list[float] = []
        raw = time_architectures(prepare, rows, runtime, warmup, repeat, tick=lambda: adv(1),
                                 anchor_log=anchors)
    ref = _anchor_ms(lut)
    assert ref is not None  # measure_supernet_lut times the anchor first
    drift = _warn_drift(anchors, ref, "timing the anchor's one-layer changes", rep)
    marginal = context_marginals(rows, ANCHOR_CHOICES, drift_correct(raw, anchors, ref) - ref)
    pairs = context_terms(lut.mean_ms, lut.fixed_ms or 0.0, ANCHOR_CHOICES, ref, marginal)
    prov = {**lut.provenance, "interactions": {
        "method": "context", "anchor": str(Arch(ANCHOR_CHOICES)), "anchor_ms": ref,
        "marginal_ms": np.round(marginal, 5).tolist(), "anchor_ms_per_group": _per_group(anchors),
        "max_drift": round(drift, 4), "arch_ids": choices_to_ids(rows).tolist()}}
    return replace(lut, interactions=pairs, interaction_method="context", provenance=prov)


def add_pair_interactions(lut: LUT, net: Supernet, runtime: Runtime, warmup: int, repeat: int,
                          rep: Reporter) -> LUT:
    """Time every adjacent candidate pair back to back; interactions = pair - (a + b)."""
    inputs = _layer_inputs(lut.input_size, next(net.parameters()).device)

    def make_pair(i: int, a: int, b: int) -> tuple[nn.Module, torch.Tensor]:
        return nn.Sequential(net.candidate(i, a), net.candidate(i + 1, b)), inputs[i]

    with rep.task("measuring adjacent pairs", 4 * NUM_CHOICES ** 2) as adv:
        pair_ms = measure_pairs(make_pair, runtime, warmup, repeat, tick=lambda: adv(1))
    prov = {**lut.provenance, "interactions": {"method": "full", "warmup": warmup,
                                               "repeat": repeat}}
    return replace(lut, interactions=pair_interactions(pair_ms, lut.mean_ms),
                   interaction_method="full", provenance=prov)


class ArchRunners:
    """Prepares the end-to-end runner of an architecture's extracted model in a runtime.

    Torch runs ``Supernet.extract(arch)``. ONNX runtimes run one ONNX graph of the whole
    model, stitched from the encoder exported once and the architecture's decoder (exporting
    DenseNet121 afresh per architecture would take seconds each); the graph computes exactly
    what the extracted model computes.
    """

    def __init__(self, net: Supernet, runtime: Runtime, size: tuple[int, int]) -> None:
        self.net, self.runtime = net, runtime
        dev = next(net.parameters()).device
        self.x = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(0)).to(dev)
        self._encoder_onnx: bytes | None = None

    def __call__(self, choices: Sequence[int]) -> Runner:
        arch = Arch(tuple(int(c) for c in choices))
        if not isinstance(self.runtime, OnnxModelRuntime):
            return self.runtime.prepare(self.net.extract(arch), self.x)
        return self.runtime.prepare_onnx(self.onnx(arch), self.x)

    def onnx(self, arch: Arch) -> bytes:
        """The serialised ONNX graph of ``arch``'s whole model (encoder + decoder)."""
        import onnx
        from onnx import compose

        if self._encoder_onnx is None:
            self._encoder_onnx = export_onnx_bytes(_Encoder(self.net).eval(), (self.x,),
                                                   ["input"], _FEATS)
        with torch.no_grad():
            feats = tuple(self.net.encoder.eval()(self.x.cpu()))
        dec = export_onnx_bytes(_Decoder(self.net, arch).eval(), feats, _FEATS, ["output"])
        merged = compose.merge_models(onnx.load_from_string(self._encoder_onnx),
                                      onnx.load_from_string(dec),
                                      io_map=[(f, f) for f in _FEATS], prefix1="enc/",
                                      prefix2="dec/")
        return bytes(merged.SerializeToString())


_FEATS = tuple(f"feat{i}" for i in range(5))


class _Encoder(nn.Module):
    def __init__(self, net: Supernet) -> None:
        super().__init__()
        self.encoder = net.encoder

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.encoder(x))  # five maps, shallow to deep


class _Decoder(nn.Module):
    """The decoder of ``arch`` exactly as in :class:`SegmentationModel` (shared weights)."""

    def __init__(self, net: Supernet, arch: Arch) -> None:
        super().__init__()
        layers = nn.ModuleList(net.candidate(i, c) for i, c in enumerate(arch.choices))
        self.model = SegmentationModel(net.encoder, layers, net.head, arch)

    def forward(self, *feats: torch.Tensor) -> torch.Tensor:
        return self.model.decode(list(feats))


def validate_lut(lut: LUT, n_archs: int, seed: int = VALIDATE_SEED, warmup: int | None = None,
                 repeat: int | None = None, rep: Reporter | None = None) -> dict[str, Any]:
    """Time ``n_archs`` held-out architectures end to end and compare with ``lut``.

    Uses the runtime, device, threads and input size of the LUT's provenance. Architectures
    the LUT's interactions were fitted on are excluded (checked by id).

    Raises:
        LUTError: when the LUT has no provenance runtime (e.g. a reference v1 table).
    """
    return validate_luts([lut], n_archs, seed, warmup, repeat, rep)[0]


def validate_luts(luts: Sequence[LUT], n_archs: int, seed: int = VALIDATE_SEED,
                  warmup: int | None = None, repeat: int | None = None,
                  rep: Reporter | None = None) -> list[dict[str, Any]]:
    """:func:`validate_lut` for several LUTs of one runtime setting, timing the held-out
    architectures once (none of them used by any LUT's interaction terms).

    The runtime, device, threads and input size are the first LUT's; timings are
    drift-corrected to its anchor time.

    Raises:
        LUTError: when a LUT has no provenance runtime or the LUTs' settings differ.
    """
    rep = rep or Reporter(quiet=True)
    for lut in luts:
        if "runtime" not in lut.provenance:
            raise LUTError(f"LUT {lut.source}: no provenance runtime, so it cannot be validated "
                           "here; measure one with `linas lut measure`")
    prov, first = luts[0].provenance, luts[0]
    keys = ("runtime", "device_type", "threads")
    for lut in luts[1:]:
        if (lut.input_size != first.input_size
                or any(lut.provenance.get(k) != prov.get(k) for k in keys)):
            raise LUTError(f"LUT {lut.source}: measured with other settings than {first.source}")
    runtime = get_runtime(str(prov["runtime"]), str(prov.get("device_type", "cpu")),
                          prov.get("threads"))
    used = [i for lut in luts for i in (lut.provenance.get("interactions") or {}).get(
        "arch_ids", [])]
    choices = sample_architectures(n_archs, seed, exclude=used)
    check_disjoint(_ids_to_choices(used), choices)
    net = _supernet(runtime.device)
    prepare = ArchRunners(net, runtime, first.input_size)
    with rep.task(f"end-to-end timing of {n_archs} architectures ({runtime.name})",
                  n_archs) as adv:
        anchors: list[float] = []
        raw = time_architectures(prepare, choices, runtime, _or(warmup, first.warmup, 3),
                                 _or(repeat, first.repeat, 10), tick=lambda: adv(1),
                                 anchor_log=anchors)
    reference = _anchor_ms(first)
    measured = drift_correct(raw, anchors, reference)
    ref = reference if reference is not None else float(np.median(anchors))
    change = _warn_drift(anchors, ref, "validating (figures are corrected to the LUT's "
                         "speed; 'raw' holds the uncorrected ones)", rep)
    drift = {"anchor": str(Arch(ANCHOR_CHOICES)), "reference_ms": ref,
             "reference": "lut" if reference is not None else "median",
             "anchor_ms_per_group": _per_group(anchors), "max_change": change}
    archs = [{"arch": str(Arch(tuple(int(c) for c in row))), "measured_ms": float(m),
              "raw_ms": float(r)} for row, m, r in zip(choices, measured, raw, strict=True)]
    reports = []
    for lut in luts:
        report = validation_report(lut, choices, measured, runtime.name, raw_ms=raw)
        report.update(lut=lut.source, input_size=list(lut.input_size), seed=seed,
                      threads=runtime.threads_used(), drift=drift, archs=archs)
        reports.append(report)
    return reports


def _warn_drift(anchors: list[float], reference: float, what: str, rep: Reporter) -> float:
    """Largest relative move of the anchor from ``reference``; warns above DRIFT_WARN, since
    corrected timings from a drifting machine stay noisy."""
    change = float(np.max(np.abs(np.asarray(anchors) / reference - 1.0))) if anchors else 0.0
    if change > DRIFT_WARN:
        rep.warn(f"the machine's speed moved by up to {100 * change:.0f}% while {what} "
                 "(corrected with the anchor, but the terms may be noisy); re-measure the LUT "
                 "when the machine is quiet")
    return change


def _anchor_ms(lut: LUT) -> float | None:
    anchor = lut.provenance.get("anchor")
    return float(anchor["ms"]) if isinstance(anchor, dict) and "ms" in anchor else None


def _per_group(anchors: list[float]) -> list[float]:
    """One anchor time per group (the log repeats it per architecture)."""
    return [round(a, 4) for a in dict.fromkeys(anchors)]


def _or(value: int | None, fallback: int | None, default: int) -> int:
    return value if value is not None else (fallback if fallback is not None else default)


def _ids_to_choices(ids: list[int]) -> np.ndarray | None:
    return ids_to_choices(np.asarray(ids, dtype=np.int64)) if ids else None


def validate_command(lut_path: Path, n_archs: int, out: Path | None, seed: int,
                     warmup: int | None, repeat: int | None, quiet: bool) -> dict[str, Any]:
    """``linas lut validate``: load, validate, print the table and write the JSON."""
    if n_archs < 2:
        raise ConfigError(f"--archs {n_archs}: need >= 2 architectures for rank correlations")
    lut = load_lut(lut_path)
    report = validate_lut(lut, n_archs, seed, warmup, repeat, Reporter(quiet))
    print(format_table(report))
    if out is not None:
        write_json_atomic(out, report)
    return report

