"""Latency fidelity benchmark: does the full latency model predict end-to-end latency?

For each runtime (torch CPU, ONNX Runtime, and OpenVINO when installed) it measures a LUT with
fitted interaction terms (timed), validates it on held-out architectures (MAPE / Spearman /
Kendall / within-10% of (a) op sum, (b) + fixed part, (c) + interactions), and measures the
LUT a second time to report repeat-build agreement (per-entry CV between the two builds, rank
correlation of architecture sums). Writes one JSON.

    flock /tmp/linas-cpu.lock .venv/bin/python benchmarks/latency_fidelity.py --out FILE
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau, spearmanr

from linas.latency import LUTLatencyModel
from linas.latency.lut import LUT, save_lut, write_json_atomic
from linas.latency.runtimes import available_runtimes, get_runtime
from linas.latency.validate import format_table, sample_architectures
from linas.lutcli import _supernet, measure_supernet_lut, validate_lut
from linas.progress import Reporter


def repeat_agreement(first: LUT, second: LUT, n_archs: int = 10_000) -> dict[str, float]:
    """Per-entry CV between two builds and rank agreement of architecture sums (with fixed)."""
    pair = np.stack([first.mean_ms, second.mean_ms])  # (2, 5, 21)
    cv = pair.std(axis=0, ddof=1) / pair.mean(axis=0)
    choices = sample_architectures(n_archs, seed=7)
    a = LUTLatencyModel(first, use_interactions=False).predict(choices)
    b = LUTLatencyModel(second, use_interactions=False).predict(choices)
    return {"entry_cv_median": float(np.median(cv)), "entry_cv_p95": float(np.percentile(cv, 95)),
            "entry_cv_max": float(cv.max()),
            "fixed_rel_diff": abs((first.fixed_ms or 0) - (second.fixed_ms or 0))
            / max(first.fixed_ms or 1e-9, 1e-9),
            "arch_sum_spearman": float(spearmanr(a, b).statistic),
            "arch_sum_kendall": float(kendalltau(a, b).statistic),
            "arch_sum_mape": float(np.mean(np.abs(a - b) / b)), "n_archs": n_archs}


def run_runtime(name: str, args: argparse.Namespace, rep: Reporter) -> dict[str, Any]:
    """Build, validate and rebuild one runtime's LUT."""
    size = tuple(int(v) for v in args.size.lower().split("x"))
    rt = get_runtime(name, "cpu", args.threads)
    net = _supernet("cpu")
    lut = measure_supernet_lut(net, size, args.warmup, args.repeat, args.threads,
                               f"bench_{name}", rep, runtime=rt, interactions="fit",
                               fit_archs=args.fit_archs)
    start = time.perf_counter()
    report = validate_lut(lut, args.archs, warmup=args.warmup, repeat=args.repeat, rep=rep)
    validate_s = time.perf_counter() - start
    print(format_table(report), flush=True)
    out: dict[str, Any] = {"runtime": name, "runtime_version": lut.provenance["runtime_version"],
                           "threads": lut.provenance["threads"], "input_size": list(size),
                           "build_s": lut.provenance["build_s"],
                           "fit": lut.provenance["interactions"],
                           "validate_s": round(validate_s, 1),
                           "validate": {k: v for k, v in report.items() if k != "archs"},
                           "validate_archs": report["archs"]}
    if not args.no_repeat_build:
        again = measure_supernet_lut(net, size, args.warmup, args.repeat, args.threads,
                                     f"bench_{name}_again", rep, runtime=rt)
        out["repeat_build"] = repeat_agreement(lut, again)
        out["repeat_build"]["build_s"] = again.provenance["build_s"]["total"]
    # the LUT itself (with the fit sample in its provenance) beside the JSON, for offline refits
    lut_path = args.out.with_name(f"{args.out.stem}_{name}_lut.json")
    save_lut(lut, lut_path)
    out["lut_file"] = lut_path.name
    out["fit"].pop("arch_ids", None)
    out["fit"].pop("measured_ms", None)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", default="128x128")
    parser.add_argument("--archs", type=int, default=50, help="held-out architectures")
    parser.add_argument("--fit-archs", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--runtimes", default=",".join(available_runtimes()))
    parser.add_argument("--no-repeat-build", action="store_true")
    args = parser.parse_args(argv)
    rep = Reporter(quiet=True)
    results: dict[str, Any] = {"size": args.size, "archs": args.archs,
                               "fit_archs": args.fit_archs, "warmup": args.warmup,
                               "repeat": args.repeat, "runtimes": {}}
    for name in args.runtimes.split(","):
        print(f"== {name}", flush=True)
        results["runtimes"][name] = run_runtime(name, args, rep)
        write_json_atomic(args.out, results)  # partial results survive a later failure
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
