"""Hypernetwork (I1) vs baseline LINAS: per-device hypervolume and a zero-shot device.

One run each, same data, cached encoder features, LUTs, decoder initialisation and
supernet-training budget (``SearchConfig``: epochs, batch size, steps):

* ``baseline``: the bi-level search over every device, then the baseline Pareto stage
  (1,000 candidates, 100 evaluated by weight sharing);
* ``hypernet``: one hypernetwork trained over every device, then a preference sweep per device;
* ``hypernet_holdout``: the same with ``--holdout`` left out of training; its front is
  generated zero-shot from its LUT fingerprint;
* ``dedicated``: the bi-level search on the held-out device alone, then the baseline Pareto
  stage for that device.

Hypernet fronts come three ways, all reported: ``hypervolume`` (the default sweep of ``linas
pareto``: per device, 21 preferences, each giving its argmax architecture plus 2 Gumbel samples
at tau 1), ``argmax_only`` (the argmax architectures alone) and ``pooled_hv`` (each device's
front over every architecture generated for any device; no extra evaluation, they share the
supernet).

Devices: this machine's LUT (``this-cpu``, measured at ``--size``) plus the six reference
LUTs, every device with the 160 ms budget. Fronts use each device's fixed hypervolume reference
point (its maximum LUT latency, mIoU 0), so the hypervolumes of one device compare across
variants. The reference LUTs were measured at 128x128 and the run layer refuses a LUT of
another input size, so a LUT that does not match ``--size`` is read as it is (its 128x128
latencies, as this benchmark always used them) instead of through ``linas.run.prepare``; see
``benchmarks/_shared.py``.

Usage (about 10-20 CPU minutes on 2 cores at the defaults)::

    flock /tmp/linas-cpu.lock .venv/bin/python benchmarks/hypernet_vs_baseline.py \\
        --out benchmarks/results/hypernet_vs_baseline.json
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _shared import prepare_run  # benchmarks/_shared.py (the script's folder is on sys.path)

from linas.config import BUDGET_MS, RunConfig, load_config
from linas.latency import find_luts, load_lut
from linas.pareto.strategies import Evaluated, device_front
from linas.progress import Reporter
from linas.run import Context, Run, RunDir
from linas.run.fronts import run_fronts
from linas.run.search import run_search, search_config
from linas.space import Arch
from linas.supernet import Supernet

ARGMAX_ONLY = 0  # Gumbel samples per swept preference in the "argmax_only" variant
REFERENCE_LUTS = Path(__file__).resolve().parents[1].parent / "shared" / "reference-luts"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="JSON file to write.")
    p.add_argument("--work", type=Path, default=Path("runs/bench_hypernet"),
                   help="Scratch run directory (data, LUTs; checkpoints are deleted).")
    p.add_argument("--size", type=int, default=96, help="Square input size (multiple of 32).")
    p.add_argument("--n-images", type=int, default=160)
    p.add_argument("--warmup-epochs", type=int, default=4)
    p.add_argument("--search-epochs", type=int, default=6)
    p.add_argument("--holdout", default="raspberrypi5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lut-dir", type=Path, default=REFERENCE_LUTS)
    p.add_argument("--restart", action="store_true",
                   help="Start --work over when it holds a run under other settings.")
    return p.parse_args()


def base_config(args: argparse.Namespace) -> RunConfig:
    """This machine (measured with 2 warm-ups and 5 repeats per LUT entry) plus every LUT of
    ``--lut-dir``, the bi-level search and default hypernetwork and Pareto settings."""
    paths = find_luts([args.lut_dir])
    if not paths:
        raise SystemExit(f"--lut-dir {args.lut_dir}: holds no .json LUT files")
    devices: list[dict[str, Any]] = [{"name": "this-cpu", "budget_ms": BUDGET_MS,
                                      "measure": {"warmup": 2, "repeat": 5}}]
    devices += [{"name": load_lut(p).name, "budget_ms": BUDGET_MS, "lut": str(p.resolve())}
                for p in paths]
    return load_config(None, [
        f"seed={args.seed}", f"data.n_images={args.n_images}",
        f"data.size=[{args.size}, {args.size}]", "encoder.weights=random",
        f"search.warmup_epochs={args.warmup_epochs}",
        f"search.search_epochs={args.search_epochs}", "search.soft_epochs=1",
        "search.batch_size=16", "devices=" + json.dumps(devices)])


def run_variant(base: Run, ctx: Context, name: str, devices: list[str],
                **search: Any) -> dict[str, Any]:
    """One search + fronts from a fresh, identically initialised decoder (``search``: changes
    to the search section, e.g. ``strategy``, ``holdout``)."""
    cfg = replace(base.cfg, devices=tuple(base.cfg.device(d) for d in devices),
                  search=replace(base.cfg.search, **search))
    run_dir = RunDir(base.dir.root / name)
    run_dir.root.mkdir(parents=True, exist_ok=True)
    run = Run(cfg, run_dir, base.rep, base.size, base.seeds,
              results={k: base.results[k] for k in ("num_classes", "ignore_index", "dataset")})
    torch.manual_seed(cfg.seed)  # the same decoder initialisation in every variant
    net = Supernet(ctx.net.num_classes, ctx.net.encoder)
    vctx = Context(net, ctx.splits, {k: ctx.luts[k] for k in devices})
    start = time.perf_counter()
    state = run_search(run, vctx)
    search_s = time.perf_counter() - start
    fronts = run_fronts(run, vctx, state)
    pareto_s = time.perf_counter() - start - search_s
    evaluated = json.loads(run.dir.pareto.read_text())["evaluated"]
    out = {"search_s": round(search_s, 1), "pareto_s": round(pareto_s, 1),
           "n_evaluated": len(evaluated),
           "devices": {k: summary(v) for k, v in fronts.items()}}
    if cfg.search.strategy == "hypernet":
        out["pooled_hv"] = pooled(evaluated, vctx, cfg)
        run = replace(run, cfg=replace(cfg, hypernet=replace(cfg.hypernet,
                                                             sweep_samples=ARGMAX_ONLY)),
                      dir=RunDir(run.dir.root / "argmax_only"))
        run.dir.root.mkdir(exist_ok=True)
        sampled = run_fronts(run, vctx, state)
        out["argmax_only"] = {"sweep_samples": ARGMAX_ONLY, "n_evaluated": len(json.loads(
            run.dir.pareto.read_text())["evaluated"]),
            "devices": {k: summary(v) for k, v in sampled.items()}}
    shutil.rmtree(run_dir.checkpoints, ignore_errors=True)  # ~2 GB each
    del net, state
    gc.collect()
    return out


def pooled(evaluated: list[dict[str, Any]], ctx: Context, cfg: RunConfig) -> dict[str, float]:
    """Each device's hypervolume over every architecture the hypernet generated for any
    device (the evaluations are shared, so this costs no further evaluation)."""
    choices = np.asarray([Arch.parse(e["arch"]).choices for e in evaluated], dtype=np.int64)
    ev = Evaluated(choices, np.asarray([e["miou"] for e in evaluated]))
    return {name: device_front(ev, model, cfg.device(name).budget_ms)["hypervolume"]
            for name, model in ctx.models.items()}


def summary(dev: dict[str, Any]) -> dict[str, Any]:
    return {"hypervolume": dev["hypervolume"], "hv_reference": dev["hv_reference"],
            "front_size": len(dev["front"]), "n_points": len(dev["evaluated"]["miou"]),
            "front": [(p["latency_ms"], p["miou"]) for p in dev["front"]],
            "selected": dev["selected"]}


def compare(variants: dict[str, dict[str, Any]], holdout: str) -> dict[str, Any]:
    """Per-device HV table and the zero-shot comparison."""
    base, hyper = variants["baseline"]["devices"], variants["hypernet"]["devices"]
    table = {d: {"baseline_hv": base[d]["hypervolume"], "hypernet_hv": hyper[d]["hypervolume"],
                 "hypernet_over_baseline": hyper[d]["hypervolume"] / base[d]["hypervolume"]
                 if base[d]["hypervolume"] > 0 else None,
                 "hypernet_argmax_only_hv": variants["hypernet"]["argmax_only"]["devices"][d][
                     "hypervolume"],
                 "hypernet_pooled_hv": variants["hypernet"]["pooled_hv"][d],
                 "baseline_front": base[d]["front_size"], "hypernet_front": hyper[d]["front_size"]}
             for d in base}
    zs = variants["hypernet_holdout"]["devices"][holdout]["hypervolume"]
    ded = variants["dedicated"]["devices"][holdout]["hypervolume"]
    hold = variants["hypernet_holdout"]
    zero_shot = {"device": holdout, "zero_shot_hv": zs, "dedicated_search_hv": ded,
                 "zero_shot_argmax_only_hv": hold["argmax_only"]["devices"][holdout][
                     "hypervolume"],
                 "zero_shot_pooled_hv": hold["pooled_hv"][holdout],
                 "zero_shot_over_dedicated": zs / ded if ded > 0 else None,
                 "hypernet_trained_on_it_hv": hyper[holdout]["hypervolume"],
                 "baseline_all_devices_hv": base[holdout]["hypervolume"]}
    return {"per_device": table, "zero_shot": zero_shot}


def main() -> None:
    args = parse_args()
    torch.set_num_threads(2)
    start = time.perf_counter()
    cfg = base_config(args)
    names = [d.name for d in cfg.devices]
    if args.holdout not in names:
        raise SystemExit(f"--holdout {args.holdout}: not a device; devices: {', '.join(names)}")
    base, ctx = prepare_run(cfg, args.work, Reporter(quiet=True), args.restart)
    prep_s = time.perf_counter() - start
    variants = {
        "baseline": run_variant(base, ctx, "baseline", names),
        "hypernet": run_variant(base, ctx, "hypernet", names, strategy="hypernet"),
        "hypernet_holdout": run_variant(base, ctx, "hypernet_holdout", names,
                                        strategy="hypernet", holdout=args.holdout),
        "dedicated": run_variant(base, ctx, "dedicated", [args.holdout]),
    }
    result = {
        "settings": {"size": args.size, "n_images": args.n_images, "seed": args.seed,
                     "stage_seeds": base.seeds,
                     "splits": base.results["dataset"]["splits"],
                     "encoder_weights": base.results["encoder_weights"],
                     "search": asdict(search_config(base)), "hypernet": asdict(cfg.hypernet),
                     "pareto_baseline": {**asdict(cfg.pareto), "seed": base.seeds["pareto"]},
                     "budget_ms": BUDGET_MS, "devices": names, "holdout": args.holdout,
                     "torch_threads": 2},
        **compare(variants, args.holdout),
        "variants": variants,
        "prepare_s": round(prep_s, 1), "total_s": round(time.perf_counter() - start, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps({"per_device": result["per_device"], "zero_shot": result["zero_shot"],
                      "total_s": result["total_s"]}, indent=1))


if __name__ == "__main__":
    main()
