"""Latency-aware distillation (I5): test mIoU of one architecture trained with kd none /
constant / latency, per seed, and the teacher's.

Per seed (0, 1, 2 by default) one run through the run layer on synthetic data
(``benchmarks/_shared.prepare_run``: data, cached features of a random-weight encoder, the
reference LUTs read as they are): a short bi-level search, the quick Pareto stage, and the
selection of the first device (``raspberrypi5``, 160 ms budget, recorded). Then, on that
supernet, the teacher (the largest subnet, ``Conv7x7_w100`` x 5) is fine-tuned once with the
CE recipe and frozen (``linas.run.final.build_teacher``), and the selected architecture is
trained three times from the same supernet weights and seed (``linas.run.final.train_arch``):

* ``none``: CE only (the baseline);
* ``constant``: CE + KD terms, alpha = base_alpha;
* ``latency``: alpha = base_alpha * (2 - student_ms / teacher_ms) on the first device's LUT,
  clipped to [base_alpha, 2 * base_alpha];
* ``latency-logit`` (diagnostic): ``latency`` with the logit term only (beta = gamma = 0), to
  tell which term moves the result.

Writes per seed and mode: test mIoU, alpha, teacher test mIoU, wall time; and mean +- std
(over seeds) per mode; prints a Markdown table. The default setting (64x64, 160 images, 3
warm-up + 4 hard search epochs, 8 final epochs) takes about 20 minutes on the shared 2-core
machine (the script prints its own projection after the first seed); ``--tiny`` (24 images,
1 + 1 search epochs, 1 final epoch) checks the script in about 2 minutes::

    flock /tmp/linas-cpu.lock .venv/bin/python benchmarks/kd.py --out benchmarks/results/kd.json
    .venv/bin/python benchmarks/kd.py --tiny        # writes runs/kd_tiny.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from _shared import prepare_run  # benchmarks/_shared.py (the script's folder is on sys.path)

from linas.config import RunConfig, load_config
from linas.progress import Reporter
from linas.run import Context, Run
from linas.run.final import Teacher, build_teacher, plan_device, train_arch
from linas.run.fronts import run_fronts
from linas.run.search import run_search
from linas.space import Arch

LUT_DIR = Path(__file__).resolve().parents[2] / "shared/reference-luts"
DEVICES = ("raspberrypi5", "odroid")  # the first one's selection is distilled
MODES = ("none", "constant", "latency")
# Diagnostic variants beside the three modes: which KD term helps or hurts (name, mode, final
# overrides). "latency-logit" keeps only the logit term (beta = gamma = 0).
VARIANTS: dict[str, tuple[str, dict[str, float]]] = {
    **{m: (m, {}) for m in MODES}, "latency-logit": ("latency", {"beta": 0.0, "gamma": 0.0})}
# (name, default, tiny)
SETTINGS = {
    "size": (64, 64), "n_images": (160, 24), "warmup_epochs": (3, 1), "search_epochs": (4, 1),
    "final_epochs": (8, 1), "n_candidates": (200, 40), "n_evaluate": (16, 6),
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=None,
                   help="JSON file (default benchmarks/results/kd.json, runs/kd_tiny.json "
                        "with --tiny).")
    p.add_argument("--work", type=Path, default=Path("runs/bench_kd"),
                   help="Scratch run directories (one per seed; checkpoints deleted).")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (compute.threads); default torch's.")
    p.add_argument("--encoder", default="random",
                   help="encoder.weights: random (default, offline), imagenet, auto or a file.")
    p.add_argument("--tiny", action="store_true", help="A smoke run of a minute or two.")
    return p.parse_args()


def setting(args: argparse.Namespace) -> dict[str, int]:
    return {k: v[1 if args.tiny else 0] for k, v in SETTINGS.items()}


def run_config(seed: int, s: dict[str, int], args: argparse.Namespace) -> RunConfig:
    devices = [{"name": n, "lut": str(LUT_DIR / f"{n}.json"), "budget_ms": 160.0}
               for n in DEVICES]
    sets = [f"seed={seed}", f"data.n_images={s['n_images']}",
            f"data.size=[{s['size']}, {s['size']}]", f"encoder.weights={args.encoder}",
            f"search.warmup_epochs={s['warmup_epochs']}",
            f"search.search_epochs={s['search_epochs']}", "search.soft_epochs=0",
            "search.batch_size=16", f"pareto.n_candidates={s['n_candidates']}",
            f"pareto.n_evaluate={s['n_evaluate']}", f"final.epochs={s['final_epochs']}",
            "final.batch_size=16", "devices=" + json.dumps(devices)]
    if args.threads is not None:
        sets.append(f"compute.threads={args.threads}")
    return load_config(None, sets)


def with_kd(run: Run, cfg: RunConfig, mode: str, **final: float) -> None:
    run.cfg = replace(cfg, final=replace(cfg.final, kd=mode, **final))


def train_mode(run: Run, ctx: Context, cfg: RunConfig, arch: Arch, variant: str,
               teacher: Teacher) -> dict[str, Any]:
    """One student training under ``variant`` (see VARIANTS); its test mIoU, alpha, wall
    time."""
    mode, final = VARIANTS[variant]
    with_kd(run, cfg, mode, **final)
    t = None if mode == "none" else teacher
    plan = plan_device(run, ctx, cfg.devices[0], arch, None if t is None else t.arch)
    start = time.perf_counter()
    _, metrics, _ = train_arch(run, ctx, arch, t, plan.alpha)
    return {"test_miou": metrics["miou"], "alpha": plan.alpha,
            "teacher_miou": None if t is None else teacher.test_miou,
            "student_predicted_ms": plan.student_ms, "teacher_predicted_ms": plan.teacher_ms,
            "wall_s": round(time.perf_counter() - start, 1),
            "final_history": metrics["train_history"]}


def one_seed(seed: int, args: argparse.Namespace, s: dict[str, int]) -> dict[str, Any]:
    cfg = run_config(seed, s, args)
    start = time.perf_counter()
    run, ctx = prepare_run(cfg, args.work / f"seed{seed}", Reporter(quiet=True), restart=True)
    prepare_s = time.perf_counter() - start
    state = run_search(run, ctx)
    search_s = time.perf_counter() - start - prepare_s
    fronts = run_fronts(run, ctx, state)
    arch = Arch.parse(fronts[DEVICES[0]]["selected"]["arch"])
    pareto_s = time.perf_counter() - start - prepare_s - search_s
    with_kd(run, cfg, "latency")
    t0 = time.perf_counter()
    teacher = build_teacher(run, ctx)
    teacher_s = time.perf_counter() - t0
    modes = {v: train_mode(run, ctx, cfg, arch, v, teacher) for v in VARIANTS}
    shutil.rmtree(run.dir.checkpoints, ignore_errors=True)  # the supernet alone is ~0.7 GB
    return {"arch": str(arch), "device": DEVICES[0],
            "selected_latency_ms": fronts[DEVICES[0]]["selected"]["latency_ms"],
            "ws_miou": fronts[DEVICES[0]]["selected"]["miou"],
            "teacher": {"arch": str(teacher.arch), "test_miou": teacher.test_miou,
                        "wall_s": round(teacher_s, 1)},
            "modes": modes, "prepare_s": round(prepare_s, 1), "search_s": round(search_s, 1),
            "pareto_s": round(pareto_s, 1), "total_s": round(time.perf_counter() - start, 1),
            "splits": run.results["dataset"]["splits"], "final": asdict(cfg.final)}


def mean_std(values: list[float]) -> dict[str, float | None]:
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else None}


def summarise(seeds: dict[int, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {m: {k: mean_std([r["modes"][m][k] for r in seeds.values()])
                               for k in ("test_miou", "alpha", "wall_s")} for m in VARIANTS}
    out["teacher"] = {"test_miou": mean_std([r["teacher"]["test_miou"] for r in seeds.values()]),
                      "wall_s": mean_std([r["teacher"]["wall_s"] for r in seeds.values()])}
    return out


def table(result: dict[str, Any]) -> str:
    def pm(d: dict[str, float | None]) -> str:
        return f"{d['mean']:.3f}" + (f" +- {d['std']:.3f}" if d["std"] is not None else "")

    seeds = result["seeds"]
    head = "| mode | " + " | ".join(f"seed {s} mIoU (alpha)" for s in seeds) + \
        " | mIoU mean +- std | wall s (mean) |"
    lines = [head, "|" + "---|" * (len(seeds) + 3)]
    for m in VARIANTS:
        cells = [f"{r['modes'][m]['test_miou']:.3f} ({r['modes'][m]['alpha']:.2f})"
                 for r in seeds.values()]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {pm(result['summary'][m]['test_miou'])}"
                     f" | {result['summary'][m]['wall_s']['mean']:.1f} |")
    cells = [f"{r['teacher']['test_miou']:.3f}" for r in seeds.values()]
    t = result["summary"]["teacher"]
    lines.append("| teacher | " + " | ".join(cells) + f" | {pm(t['test_miou'])} | "
                 f"{t['wall_s']['mean']:.1f} |")
    archs = "; ".join(f"seed {k}: `{r['arch']}`" for k, r in seeds.items())
    return "\n".join(lines) + f"\n\nStudent (selection of {DEVICES[0]}): {archs}"


def main() -> None:
    args = parse_args()
    out = args.out or Path("runs/kd_tiny.json" if args.tiny else "benchmarks/results/kd.json")
    s = setting(args)
    start = time.perf_counter()
    seeds: dict[int, dict[str, Any]] = {}
    for i, seed in enumerate(args.seeds):
        seeds[seed] = one_seed(seed, args, s)
        done = time.perf_counter() - start
        left = done / (i + 1) * (len(args.seeds) - i - 1)
        print(f"seed {seed}: {seeds[seed]['total_s']:.0f} s; estimated {left / 60:.1f} min "
              f"left, {(done + left) / 60:.1f} min in all", flush=True)
    result = {"setting": {**s, "tiny": args.tiny, "seeds": args.seeds, "devices": DEVICES,
                          "budget_ms": 160.0, "encoder_weights": args.encoder,
                          "data": "synthetic", "threads": args.threads},
              "seeds": seeds, "summary": summarise(seeds),
              "total_s": round(time.perf_counter() - start, 1)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(table(result))
    print(f"\nwrote {out} ({result['total_s']:.0f} s)")


if __name__ == "__main__":
    main()
