"""End-to-end validation of a latency model: predicted vs measured on held-out architectures.

Three predictions per architecture are compared with its measured end-to-end latency:
(a) the plain op sum, (b) + the fixed part, (c) + the interaction terms. Metrics are pure
functions of arrays (:func:`metrics`, :func:`validation_report`); :func:`time_architectures`
is the only clock-reading function here (through :mod:`linas.latency.measure`).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from scipy.stats import kendalltau, spearmanr

from linas.latency.interactions import op_sum, pair_sum
from linas.latency.lut import LUT
from linas.latency.measure import time_runners
from linas.latency.runtimes import Runner, Runtime
from linas.space import NUM_CHOICES, NUM_LAYERS, choices_to_ids, ids_to_choices

VARIANTS = ("op_sum", "with_fixed", "with_interactions")
METRICS = ("mape", "spearman", "kendall", "within_10pct")


def sample_architectures(n: int, seed: int, exclude: Iterable[int] = ()) -> np.ndarray:
    """``n`` distinct random architectures (N, 5), none of whose ids is in ``exclude``.

    Args:
        n: how many.
        seed: seeds the draw (numpy ``default_rng``).
        exclude: architecture ids (see :func:`linas.space.choices_to_ids`) never to return.

    Returns:
        Choice indices, shape (n, 5).
    """
    banned = {int(i) for i in exclude}
    total = NUM_CHOICES ** NUM_LAYERS
    if n < 0 or n > total - len(banned):
        raise ValueError(f"cannot sample {n} architectures with {len(banned)} excluded")
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    seen = set(banned)
    while len(picked) < n:
        i = int(rng.integers(total))
        if i not in seen:
            seen.add(i)
            picked.append(i)
    ids = np.asarray(picked, dtype=np.int64)
    return ids_to_choices(ids)


def metrics(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """MAPE, Spearman rho, Kendall tau and share within +-10% of ``predicted`` vs ``measured``.

    MAPE and the share are fractions (0.05 = 5%); relative errors are ``|p - m| / m``.

    Raises:
        ValueError: on mismatched shapes, fewer than 2 values or a non-positive measurement.
    """
    p, m = np.asarray(predicted, dtype=np.float64), np.asarray(measured, dtype=np.float64)
    if p.shape != m.shape or p.ndim != 1 or len(p) < 2:
        raise ValueError(f"need two equal 1-D arrays of >= 2 values, got {p.shape}, {m.shape}")
    if np.any(m <= 0) or not np.all(np.isfinite(p)):
        raise ValueError("measured latencies must be positive and predictions finite")
    rel = np.abs(p - m) / m
    return {"mape": float(rel.mean()),
            "spearman": float(spearmanr(p, m).statistic),
            "kendall": float(kendalltau(p, m).statistic),
            "within_10pct": float(np.mean(rel <= 0.10))}


def predictions(lut: LUT, choices: np.ndarray) -> dict[str, np.ndarray]:
    """The three predictions (a) op sum, (b) + fixed, (c) + interactions, each (N,).

    A part the LUT lacks contributes zero, so e.g. (c) equals (b) without interactions.
    """
    ops = op_sum(lut.mean_ms, choices)
    fixed = ops + (lut.fixed_ms or 0.0)
    full = fixed + (pair_sum(lut.interactions, choices) if lut.interactions is not None
                    else 0.0)
    return {"op_sum": ops, "with_fixed": fixed, "with_interactions": full}


def validation_report(lut: LUT, choices: np.ndarray, measured_ms: np.ndarray,
                      runtime: str | None = None,
                      raw_ms: np.ndarray | None = None) -> dict[str, Any]:
    """The validation JSON: per metric, the value of each variant (a), (b), (c).

    Args:
        lut: the table under test.
        choices: (N, 5) held-out architectures.
        measured_ms: (N,) their measured end-to-end latency.
        runtime: runtime name to record (default: the LUT's provenance).
        raw_ms: when ``measured_ms`` is drift-corrected, the uncorrected timings; their
            metrics go under ``"raw"``.

    Returns:
        ``{"runtime", "n_archs", "mape": {variant: value}, "spearman", "kendall",
        "within_10pct", "has_fixed", "has_interactions", "interaction_method"}``.
    """
    preds = predictions(lut, choices)
    per = {v: metrics(preds[v], measured_ms) for v in VARIANTS}
    out: dict[str, Any] = {"runtime": runtime or lut.provenance.get("runtime", "unknown"),
                           "n_archs": int(len(measured_ms))}
    for name in METRICS:
        out[name] = {v: per[v][name] for v in VARIANTS}
    out.update(has_fixed=lut.fixed_ms is not None, has_interactions=lut.interactions is not None,
               interaction_method=lut.interaction_method)
    if raw_ms is not None:
        raw = {v: metrics(preds[v], raw_ms) for v in VARIANTS}
        out["raw"] = {name: {v: raw[v][name] for v in VARIANTS} for name in METRICS}
    return out


def format_table(report: dict[str, Any]) -> str:
    """A plain-text table of a :func:`validation_report` (percentages for MAPE and share)."""
    head = f"{'prediction':<28}{'MAPE':>8}{'Spearman':>10}{'Kendall':>9}{'within10%':>11}"
    names = {"op_sum": "(a) op sum", "with_fixed": "(b) + fixed part",
             "with_interactions": "(c) + interactions"}
    lines = [f"runtime {report['runtime']}, {report['n_archs']} held-out architectures", head]
    for v in VARIANTS:
        lines.append(f"{names[v]:<28}{100 * report['mape'][v]:>7.1f}%"
                     f"{report['spearman'][v]:>10.3f}{report['kendall'][v]:>9.3f}"
                     f"{100 * report['within_10pct'][v]:>10.0f}%")
    return "\n".join(lines)


PrepareArch = Callable[[Sequence[int]], Runner]


ANCHOR_CHOICES = (10,) * NUM_LAYERS  # DWSep3x3_w75 in every layer: a mid-cost model
DRIFT_WARN = 0.10  # anchor moved by more than this since the LUT: say so


def time_architectures(prepare: PrepareArch, choices: np.ndarray, runtime: Runtime,
                       warmup: int = 3, repeat: int = 10, group: int = 8, rounds: int = 2,
                       tick: Callable[[], None] | None = None,
                       anchor: Sequence[int] | None = ANCHOR_CHOICES,
                       anchor_log: list[float] | None = None) -> np.ndarray:
    """Measure the end-to-end latency of architectures, ``group`` at a time, round-robin.

    With ``anchor``, one fixed architecture is timed inside every group as well, and its time
    in each architecture's group goes to ``anchor_log`` (one value per architecture), so the
    caller can correct drift with :func:`drift_correct`. The machine's speed wanders: on this
    2-core VM the anchor once went from 12.4 to 17.6 ms between two groups of a validation.

    Args:
        prepare: ``choices -> runner`` for the extracted model of an architecture in
            ``runtime`` (built by the caller, which knows the supernet).
        choices: (N, 5) architectures.
        runtime: the runtime the runners belong to (its thread setting applies).
        warmup: untimed calls per model.
        repeat: timed calls per model.
        group: models alive and interleaved at once (drift spreads within a group).
        rounds: round-robin rounds within a group.
        tick: progress hook, once per architecture.
        anchor: the anchor architecture timed in every group; None: no anchor.
        anchor_log: receives the anchor's time in each architecture's group (N values).

    Returns:
        (N,) IQR-filtered mean latency in ms, as measured (not corrected).
    """
    choices = np.asarray(choices, dtype=np.int64)
    out = np.zeros(len(choices))
    with runtime.scope():
        anchor_runner = prepare([int(c) for c in anchor]) if anchor is not None else None
        for start in range(0, len(choices), group):
            runners = [prepare([int(c) for c in row]) for row in choices[start:start + group]]
            timed = runners + ([anchor_runner] if anchor_runner is not None else [])
            stats = time_runners(timed, warmup, repeat, rounds, _first(len(runners), tick))
            out[start:start + len(runners)] = [s.mean_ms for s in stats[:len(runners)]]
            if anchor_runner is not None and anchor_log is not None:
                anchor_log.extend([stats[-1].mean_ms] * len(runners))
            del runners, timed
            gc.collect()  # free the group's sessions before the next group is built
    return out


def drift_correct(measured_ms: np.ndarray, anchor_ms: Sequence[float],
                  reference_ms: float | None = None) -> np.ndarray:
    """Express timings at the machine speed of a reference moment.

    Each timing is scaled by ``reference / anchor`` where ``anchor`` is the anchor's time in
    the same group (see :func:`time_architectures`) and ``reference`` the anchor's time when
    the LUT was measured (default: the median anchor of this run).

    Raises:
        ValueError: on mismatched lengths or non-positive anchor times.
    """
    measured = np.asarray(measured_ms, dtype=np.float64)
    anchors = np.asarray(anchor_ms, dtype=np.float64)
    if anchors.shape != measured.shape or np.any(anchors <= 0):
        raise ValueError(f"need one positive anchor time per timing, got {anchors.shape} for "
                         f"{measured.shape}")
    ref = float(np.median(anchors)) if reference_ms is None else float(reference_ms)
    return measured * ref / anchors


def _first(n: int, tick: Callable[[], None] | None) -> Callable[[], None] | None:
    """A tick that passes on only its first ``n`` calls (the anchor is not progress)."""
    if tick is None:
        return None
    left = [n]

    def limited() -> None:
        if left[0] > 0:
            left[0] -= 1
            tick()
    return limited


def check_disjoint(fit_choices: np.ndarray | None, val_choices: np.ndarray) -> None:
    """Raise ValueError when a validation architecture was used for fitting."""
    if fit_choices is None or len(fit_choices) == 0:
        return
    shared = set(choices_to_ids(fit_choices).tolist()) & set(
        choices_to_ids(val_choices).tolist())
    if shared:
        raise ValueError(f"{len(shared)} validation architectures were used for fitting")
