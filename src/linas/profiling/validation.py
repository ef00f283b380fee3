"""End-to-end validation of LUTs measured here: time held-out extracted architectures in the
LUT's runtime and compare with (a) op sum, (b) + fixed part, (c) + interactions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from linas._errors import LUTError
from linas.latency.lut import LUT
from linas.latency.runtimes import get_runtime
from linas.latency.validate import (
    ANCHOR_CHOICES,
    check_disjoint,
    drift_correct,
    sample_architectures,
    time_architectures,
    validation_report,
)
from linas.profiling.drift import anchor_ms, per_group, warn_drift
from linas.profiling.runners import ArchRunners, build_supernet
from linas.progress import Reporter
from linas.space import Arch, ids_to_choices

VALIDATE_SEED = 2_000  # held-out architectures; fitting uses FIT_SEED


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
    _check_same_setting(luts)
    prov, first = luts[0].provenance, luts[0]
    runtime = get_runtime(str(prov["runtime"]), str(prov.get("device_type", "cpu")),
                          prov.get("threads"))
    used = [i for lut in luts for i in (lut.provenance.get("interactions") or {}).get(
        "arch_ids", [])]
    choices = sample_architectures(n_archs, seed, exclude=used)
    check_disjoint(_ids_to_choices(used), choices)
    prepare = ArchRunners(build_supernet(runtime.device), runtime, first.input_size)
    with rep.task(f"end-to-end timing of {n_archs} architectures ({runtime.name})",
                  n_archs) as adv:
        anchors: list[float] = []
        raw = time_architectures(prepare, choices, runtime, _or(warmup, first.warmup, 3),
                                 _or(repeat, first.repeat, 10), tick=lambda: adv(1),
                                 anchor_log=anchors)
    reference = anchor_ms(first)
    measured = drift_correct(raw, anchors, reference)
    ref = reference if reference is not None else float(np.median(anchors))
    change = warn_drift(anchors, ref, "validating (figures are corrected to the LUT's "
                        "speed; 'raw' holds the uncorrected ones)", rep)
    drift = {"anchor": str(Arch(ANCHOR_CHOICES)), "reference_ms": ref,
             "reference": "lut" if reference is not None else "median",
             "anchor_ms_per_group": per_group(anchors), "max_change": change}
    archs = [{"arch": str(Arch(tuple(int(c) for c in row))), "measured_ms": float(m),
              "raw_ms": float(r)} for row, m, r in zip(choices, measured, raw, strict=True)]
    reports = []
    for lut in luts:
        report = validation_report(lut, choices, measured, runtime.name, raw_ms=raw)
        report.update(lut=lut.source, input_size=list(lut.input_size), seed=seed,
                      threads=runtime.threads_used(), drift=drift, archs=archs)
        reports.append(report)
    return reports


def _check_same_setting(luts: Sequence[LUT]) -> None:
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


def _or(value: int | None, fallback: int | None, default: int) -> int:
    return value if value is not None else (fallback if fallback is not None else default)


def _ids_to_choices(ids: list[int]) -> np.ndarray | None:
    return ids_to_choices(np.asarray(ids, dtype=np.int64)) if ids else None
