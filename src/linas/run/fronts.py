"""The Pareto stage of a run, for every strategy: choose architectures, evaluate each distinct
one once by weight sharing, build every device's front and selection, plan the fleet, and
write ``pareto.json``.

Candidates: a bi-level run asks the configured Pareto strategy (``baseline`` sampling from the
logits, or I3 ``zero-cost``); a hypernet run sweeps preferences per device (the held-out device
zero-shot) and, with ``pareto.strategy: zero-cost``, adds the zero-cost picks to every device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from linas._io import write_json_atomic
from linas.pareto.fleet import fleet_summary, plan_fleet
from linas.pareto.strategies import (
    PARETO_STRATEGIES,
    Evaluated,
    PickContext,
    device_front,
    finish_search_info,
)
from linas.run.prepare import Context
from linas.run.state import Run
from linas.search import evaluate_choices
from linas.space import Arch


def run_fronts(run: Run, ctx: Context, state: Any) -> dict[str, Any]:
    """Fronts and selections of every device; also sets ``results['fleet_plan']``."""
    per_device, info, pick = candidates(run, ctx, state)
    miou = evaluate_once(run, ctx, list(per_device.values()))
    if pick is not None:  # evaluated count and, for a proxy, its rank correlation with mIoU
        picked_miou = np.asarray([miou[tuple(int(c) for c in row)] for row in pick])
        if "added" in info:
            info["added"] = finish_search_info(info["added"], picked_miou)
        else:
            info = finish_search_info(info, picked_miou)
    devices: dict[str, Any] = {}
    for dev in run.cfg.devices:
        choices = per_device[dev.name]
        acc = np.asarray([miou[tuple(int(c) for c in row)] for row in choices])
        model = ctx.models[dev.name]
        front = device_front(Evaluated(choices, acc), model, dev.budget_ms)
        sel = front["selected"]
        sel["p95_ms"] = float(model.p95(np.asarray([Arch.parse(sel["arch"]).choices]))[0])
        front.update(lut=str(run.dir.luts / f"{dev.name}.json"),
                     decoder_only=not model.end_to_end)
        if dev.name in info.get("per_device", {}):
            front["hypernet"] = {**info["per_device"][dev.name], "generated": len(choices)}
        devices[dev.name] = front
    run.results["pareto_search"] = {k: v for k, v in info.items() if k != "per_device"}
    run.results["fleet_plan"] = fleet_plan(run, ctx, miou)
    if not run.compute.main:  # only rank 0 writes
        return devices
    write_json_atomic(run.dir.pareto, {
        "search": run.results["pareto_search"],
        "evaluated": [{"arch": str(Arch(k)), "miou": v} for k, v in miou.items()],
        "devices": {k: {"front": v["front"], "hypervolume": v["hypervolume"],
                        "hv_reference": v["hv_reference"]} for k, v in devices.items()}})
    return devices


def candidates(run: Run, ctx: Context, state: Any
               ) -> tuple[dict[str, np.ndarray], dict[str, Any], np.ndarray | None]:
    """Architectures (n, 5) to evaluate per device, what chose them, and the Pareto
    strategy's own picks (None for a plain hypernet sweep)."""
    pcfg = replace(run.cfg.pareto, seed=run.seeds["pareto"])
    hypernet = run.cfg.search.strategy == "hypernet"
    pick: np.ndarray | None = None
    info: dict[str, Any] = {"strategy": "hypernet-sweep"} if hypernet else {}
    if not hypernet or pcfg.strategy != "baseline":
        pctx = PickContext(list(ctx.models.values()), None if hypernet else
                           state.logits.numpy(), ctx.net, ctx.splits["train"],
                           run.results["num_classes"], run.results.get("ignore_index", 255))
        pick, picked = PARETO_STRATEGIES.get(pcfg.strategy)(pcfg, pctx)
        info = {**info, **picked} if not hypernet else {**info, "added": picked}
    if not hypernet:
        assert pick is not None
        return {d.name: pick for d in run.cfg.devices}, info, pick
    from linas.run.search import hypernet_devices

    out: dict[str, np.ndarray] = {}
    per_device: dict[str, Any] = {}
    for dev in hypernet_devices(run, ctx):
        swept, w_lat = state.architectures(dev, run.cfg.hypernet, run.seeds["pareto"])
        out[dev.name] = swept if pick is None else np.unique(np.vstack([swept, pick]), axis=0)
        per_device[dev.name] = {"zero_shot": dev.name == run.cfg.search.holdout,
                                "swept": len(swept), "w_lat": w_lat}
    info.update(holdout=run.cfg.search.holdout, per_device=per_device)
    return out, info, pick


def evaluate_once(run: Run, ctx: Context,
                  per_device: list[np.ndarray]) -> dict[tuple[int, ...], float]:
    """Weight-sharing mIoU (arch-val) of every distinct architecture, each evaluated once."""
    todo = list(dict.fromkeys(tuple(int(c) for c in row) for ch in per_device for row in ch))
    out: dict[tuple[int, ...], float] = {}
    with run.rep.task("weight-sharing evaluation", len(todo)) as advance:
        for key in todo:
            out[key] = ws_miou(run, ctx, key)
            advance(1)
    run.results["evaluated_architectures"] = len(out)
    return out


def ws_miou(run: Run, ctx: Context, choices: Sequence[int]) -> float:
    """Weight-sharing arch-val mIoU of one path, as the Pareto stage measures it (with BN
    recalibration on ``pareto.bn_recal_batches`` training batches when that is > 0)."""
    n = run.cfg.pareto.bn_recal_batches
    miou, _ = evaluate_choices(ctx.net, ctx.splits["arch_val"], [int(c) for c in choices],
                               run.results["num_classes"], run.results.get("ignore_index", 255),
                               compute=run.compute, bn_recal=ctx.splits["train"] if n else None,
                               bn_recal_batches=max(n, 1))
    return float(miou)


def fleet_plan(run: Run, ctx: Context, miou: dict[tuple[int, ...], float]) -> dict[str, Any]:
    """The fewest distinct decoders meeting every device's budget (over everything evaluated,
    by predicted latency), and the mIoU each device gives up against its own best."""
    keys = list(miou)
    choices = np.asarray(keys, dtype=np.int64).reshape(-1, 5)
    names = [d.name for d in run.cfg.devices]
    lat = np.stack([ctx.models[n].predict(choices) for n in names], axis=1)  # (N, D)
    acc = np.asarray([miou[k] for k in keys])
    budgets = np.asarray([d.budget_ms for d in run.cfg.devices])
    plan = plan_fleet(lat, acc, budgets)
    return fleet_summary(plan, [str(Arch(k)) for k in keys], names, acc, lat, budgets)

