"""Interaction terms of a supernet LUT, measured in a runtime: fitted from end-to-end timings
(``fit``), from the anchor's one-layer changes (``context``) or from every adjacent pair
(``full``). The math is in :mod:`linas.latency.interactions`; every result is kept physical
(no architecture of the space predicted at or below zero, see
:mod:`linas.latency.constrained`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from linas.latency.constrained import keep_positive
from linas.latency.interactions import (
    context_design,
    context_marginals,
    context_terms,
    fit_interactions,
    measure_pairs,
    pair_interactions,
)
from linas.latency.lut import LUT
from linas.latency.runtimes import Runtime
from linas.latency.sums import space_minimum
from linas.latency.validate import (
    ANCHOR_CHOICES,
    drift_correct,
    sample_architectures,
    time_architectures,
)
from linas.profiling.drift import anchor_ms, per_group, warn_drift
from linas.profiling.runners import ArchRunners, layer_inputs
from linas.progress import Reporter
from linas.space import NUM_CHOICES, Arch, choices_to_ids
from linas.supernet import Supernet

FIT_SEED = 1_000  # architectures sampled for fitting; validation uses VALIDATE_SEED


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
    reference = anchor_ms(lut)
    measured = drift_correct(raw, anchors, reference)
    ref = reference if reference is not None else float(np.median(anchors))
    drift = warn_drift(anchors, ref, "fitting the interaction terms", rep)
    fit = fit_interactions(lut.mean_ms, lut.fixed_ms or 0.0, choices, measured)
    prov = {**lut.provenance, "interactions": {
        "method": "fit", "seed": seed, "n_archs": n_archs, "alpha": fit.alpha,
        "cv_mape": fit.cv_mape, "terms": fit.terms, "cv_mape_by_terms": fit.cv_by_terms,
        "intercept_ms": fit.intercept,
        "layer_scales": [round(float(s), 4) for s in fit.scales],
        "shrink": fit.shrink, "min_ms": fit.min_ms,
        "arch_ids": choices_to_ids(choices).tolist(),
        "measured_ms": [round(float(m), 5) for m in measured],
        "raw_ms": [round(float(m), 5) for m in raw], "anchor_ms": per_group(anchors),
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
    ref = anchor_ms(lut)
    if ref is None:
        raise ValueError("add_context_interactions needs the LUT's anchor time "
                         "(provenance['anchor'], recorded by measure_supernet_lut)")
    drift = warn_drift(anchors, ref, "timing the anchor's one-layer changes", rep)
    marginal = context_marginals(rows, ANCHOR_CHOICES, drift_correct(raw, anchors, ref) - ref)
    fixed = lut.fixed_ms or 0.0
    pairs = context_terms(lut.mean_ms, fixed, ANCHOR_CHOICES, ref, marginal)
    prov = {**lut.provenance, "interactions": {
        "method": "context", "anchor": str(Arch(ANCHOR_CHOICES)), "anchor_ms": ref,
        "marginal_ms": np.round(marginal, 5).tolist(), "anchor_ms_per_group": per_group(anchors),
        "max_drift": round(drift, 4), "arch_ids": choices_to_ids(rows).tolist(),
        "min_ms": space_minimum(lut.mean_ms, fixed, pairs)[0]}}
    return replace(lut, interactions=pairs, interaction_method="context", provenance=prov)


def add_pair_interactions(lut: LUT, net: Supernet, runtime: Runtime, warmup: int, repeat: int,
                          rep: Reporter) -> LUT:
    """Time every adjacent candidate pair back to back; interactions = pair - (a + b)."""
    inputs = layer_inputs(lut.input_size, next(net.parameters()).device)

    def make_pair(i: int, a: int, b: int) -> tuple[nn.Module, torch.Tensor]:
        return nn.Sequential(net.candidate(i, a), net.candidate(i + 1, b)), inputs[i]

    with rep.task("measuring adjacent pairs", 4 * NUM_CHOICES ** 2) as adv:
        pair_ms = measure_pairs(make_pair, runtime, warmup, repeat, tick=lambda: adv(1))
    fixed = lut.fixed_ms or 0.0
    pairs, shrink = keep_positive(lut.mean_ms, fixed, pair_interactions(pair_ms, lut.mean_ms))
    prov = {**lut.provenance, "interactions": {
        "method": "full", "warmup": warmup, "repeat": repeat, "shrink": shrink,
        "min_ms": space_minimum(lut.mean_ms, fixed, pairs)[0]}}
    return replace(lut, interactions=pairs, interaction_method="full", provenance=prov)
