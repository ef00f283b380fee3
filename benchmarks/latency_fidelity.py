"""Latency fidelity benchmark: does the full latency model predict end-to-end latency?

For each runtime (torch CPU, ONNX Runtime, and OpenVINO when installed) it measures a LUT (ops,
fixed part, anchor), adds interaction terms with each method of ``--methods`` (``fit``: ridge
on end-to-end timings; ``context``: in-graph marginal costs around the anchor), all timed,
validates every variant on the same held-out architectures (MAPE / Spearman / Kendall /
within-10% of (a) op sum, (b) + fixed part, (c) + interactions), and measures the ops a second
time to report repeat-build agreement (per-entry CV between the two builds, rank correlation
of architecture sums). Writes one JSON, and each runtime's LUTs beside it.

Each runtime runs in its own fresh process: in one long process the ONNX Runtime validation
after the torch runs slowed by ~50% from its third group on (the anchor model's time went from
11 to 16.5 ms), which did not happen in a fresh process. Figures are drift-corrected to the
LUT's anchor time (see ``linas.latency.validate.drift_correct``); ``validate.raw`` holds the
uncorrected ones.

    flock /tmp/linas-cpu.lock .venv/bin/python benchmarks/latency_fidelity.py --out FILE
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau, spearmanr

from linas._io import write_json_atomic
from linas.latency import LUTLatencyModel
from linas.latency.lut import LUT, save_lut
from linas.latency.runtimes import available_runtimes, get_runtime
from linas.latency.validate import format_table, sample_architectures
from linas.profiling import (
    FIT_SEED,
    ArchRunners,
    add_context_interactions,
    add_fitted_interactions,
    measure_supernet_lut,
    validate_luts,
)
from linas.profiling import build_supernet as _supernet
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
    """Build one runtime's LUT, add each interaction method, validate all on the same held-out
    architectures (timed once), and rebuild the ops to check repeatability."""
    size = tuple(int(v) for v in args.size.lower().split("x"))
    rt = get_runtime(name, "cpu", args.threads)
    net = _supernet("cpu")
    prepare = ArchRunners(net, rt, size)
    base = measure_supernet_lut(net, size, args.warmup, args.repeat, args.threads,
                                f"bench_{name}", rep, runtime=rt, prepare=prepare)
    luts: dict[str, LUT] = {}
    build_s: dict[str, float] = {"ops_fixed_anchor": base.provenance["build_s"]["total"]}
    for method in args.methods.split(","):
        start = time.perf_counter()
        if method == "fit":
            luts[method] = add_fitted_interactions(base, net, rt, args.fit_archs, FIT_SEED,
                                                   args.warmup, args.repeat, rep, prepare)
        elif method == "context":
            luts[method] = add_context_interactions(base, rt, args.warmup, args.repeat, rep,
                                                    prepare)
        else:
            raise SystemExit(f"--methods: unknown method '{method}' (fit, context)")
        build_s[method] = round(time.perf_counter() - start, 1)
    start = time.perf_counter()
    reports = validate_luts(list(luts.values()), args.archs, warmup=args.warmup,
                            repeat=args.repeat, rep=rep)
    validate_s = time.perf_counter() - start
    out: dict[str, Any] = {"runtime": name, "runtime_version": base.provenance["runtime_version"],
                           "threads": base.provenance["threads"], "input_size": list(size),
                           "anchor": base.provenance["anchor"], "build_s": build_s,
                           "validate_s": round(validate_s, 1), "methods": {}}
    for (method, lut), report in zip(luts.items(), reports, strict=True):
        print(f"-- interactions: {method}\n{format_table(report)}", flush=True)
        terms = {k: v for k, v in lut.provenance["interactions"].items()
                 if k not in ("arch_ids", "measured_ms", "raw_ms", "marginal_ms")}
        out["methods"][method] = {"interactions": terms,
                                  "validate": {k: v for k, v in report.items()
                                               if k not in ("archs", "drift")}}
        # the LUT itself (fit sample / marginals in its provenance) beside the JSON
        lut_path = args.out.with_name(f"{args.out.stem}_{name}_{method}_lut.json")
        save_lut(lut, lut_path)
        out["methods"][method]["lut_file"] = lut_path.name
    out["drift"] = reports[0]["drift"]
    out["validate_archs"] = reports[0]["archs"]
    if not args.no_repeat_build:
        again = measure_supernet_lut(net, size, args.warmup, args.repeat, args.threads,
                                     f"bench_{name}_again", rep, runtime=rt)
        out["repeat_build"] = repeat_agreement(base, again)
        out["repeat_build"]["build_s"] = again.provenance["build_s"]["total"]
    return out


def run_in_child(name: str, argv: list[str] | None, out: Path) -> dict[str, Any]:
    """Run one runtime's part in a fresh Python process; its LUT lands beside ``out``."""
    rest = list(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory() as tmp:
        part = Path(tmp) / out.name
        cmd = [sys.executable, __file__, *_without(rest, "--out", "--runtimes"),
               "--out", str(part), "--runtimes", name]
        subprocess.run(cmd, check=True)
        result: dict[str, Any] = json.loads(part.read_text())["runtimes"][name]
        for info in result["methods"].values():
            lut_dest = out.with_name(info["lut_file"].replace(part.stem, out.stem, 1))
            lut_dest.parent.mkdir(parents=True, exist_ok=True)
            lut_dest.write_bytes((Path(tmp) / info["lut_file"]).read_bytes())
            info["lut_file"] = lut_dest.name
    return result


def _without(args: list[str], *options: str) -> list[str]:
    """``args`` minus each of ``options`` and its value (``--opt v`` or ``--opt=v``)."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in options:
            skip = True
        elif not any(a.startswith(o + "=") for o in options):
            out.append(a)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", default="128x128")
    parser.add_argument("--archs", type=int, default=50, help="held-out architectures")
    parser.add_argument("--fit-archs", type=int, default=40)
    parser.add_argument("--methods", default="fit,context",
                        help="interaction methods compared: fit (ridge on --fit-archs end-to-end "
                             "timings), context (in-graph marginal costs around the anchor)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--runtimes", default=",".join(available_runtimes()))
    parser.add_argument("--no-repeat-build", action="store_true")
    parser.add_argument("--in-process", action="store_true",
                        help="run every runtime in this process (default: one process each)")
    args = parser.parse_args(argv)
    rep = Reporter(quiet=True)
    results: dict[str, Any] = {"size": args.size, "archs": args.archs,
                               "fit_archs": args.fit_archs, "methods": args.methods.split(","),
                               "warmup": args.warmup, "repeat": args.repeat, "runtimes": {}}
    names = args.runtimes.split(",")
    for name in names:
        print(f"== {name}", flush=True)
        if args.in_process or len(names) == 1:
            results["runtimes"][name] = run_runtime(name, args, rep)
        else:
            results["runtimes"][name] = run_in_child(name, argv, args.out)
        write_json_atomic(args.out, results)  # partial results survive a later failure
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
