"""What the ablation measures beyond a normal run: the stand-alone ground truth (per seed,
shared by the rows), the end-to-end validation of the measured devices' LUTs (once), and per
row the weight-sharing mIoU of the ground-truth and reference architectures in the row's own
supernet. Everything is cached on disk, keyed by what it depends on, and written atomically,
so a killed ablation loses at most the item in progress."""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from linas._io import write_json_atomic
from linas.config import RunConfig
from linas.latency import LUTLatencyModel, load_lut
from linas.latency.validate import sample_architectures
from linas.progress import Reporter
from linas.run.final import digest
from linas.run.prepare import Context
from linas.run.state import Run
from linas.space import Arch, SearchSpace

TRUTH_POOL = 4096  # architectures the stratified ground-truth subset is drawn from


@dataclass
class Plan:
    """The ablation's fixed inputs: the base config (profile applied), seeds, budgets, the
    output folder, and the architecture lists every row is measured on (fixed once)."""

    cfg: RunConfig
    seeds: list[int]
    profile: Any
    out: Path
    subset_seed: int

    @classmethod
    def build(cls, cfg: RunConfig, seeds: Sequence[int], profile: Any, out: Path) -> Plan:
        # the fixed subsets derive from the smallest seed: the same for every row and seed
        seq = np.random.SeedSequence([min(seeds), 0xAB1A7E])
        return cls(cfg, list(seeds), profile, Path(out), int(seq.generate_state(1)[0]))

    def describe(self, rows: Sequence[Any]) -> dict[str, Any]:
        return {"seeds": self.seeds, "rows": [r.id for r in rows],
                "profile": {"name": self.profile.name, "description": self.profile.description,
                            "overrides": self.profile.overrides,
                            "truth_archs": self.profile.truth_archs,
                            "reference_archs": self.profile.reference_archs,
                            "validate_archs": self.profile.validate_archs},
                "config": self.cfg.to_dict()}

    def reference_choices(self) -> np.ndarray:
        """The fixed random reference architectures (R, 5) of the hypervolume column."""
        return sample_architectures(self.profile.reference_archs, self.subset_seed + 1)


@dataclass
class SharedSeed:
    """A seed's shared run directory and what was computed there."""

    dir: Path
    truth_choices: np.ndarray  # (K, 5), stratified over the first device's latency
    truth_miou: list[float]  # stand-alone mIoU on the arch-val split
    validation: dict[str, Any]  # by measured device: the LUT's end-to-end validation


def shared_config(plan: Plan, seed: int) -> RunConfig:
    from linas.run.ablation import ROWS, row_config

    return row_config(plan.cfg, ROWS[0], seed)


def prepare_seed(plan: Plan, seed: int, rep: Reporter) -> SharedSeed:
    """Data, feature cache and LUTs of ``seed`` (measured LUTs: reused from the first seed),
    the LUT validation (first seed) and the stand-alone ground truth."""
    from linas.run.stages import session

    root = plan.out / "shared" / f"seed{seed}"
    first = plan.out / "shared" / f"seed{plan.seeds[0]}"
    if root != first:  # one measurement of this machine serves every seed
        for dev in plan.cfg.devices:
            src, dst = first / "luts" / f"{dev.name}.json", root / "luts" / f"{dev.name}.json"
            if dev.measure is not None and src.is_file() and not dst.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
    with session(root, shared_config(plan, seed), rep) as (run, ctx):
        run.save()
        choices = truth_choices(plan, ctx)
        validation = validate_measured(plan, run, ctx) if root == first else \
            read_json(first / "latency_validation.json")
        truth = [standalone_miou(run, ctx, Arch(tuple(int(c) for c in row)))
                 for row in choices]
    return SharedSeed(root, choices, truth, validation)


def truth_choices(plan: Plan, ctx: Context) -> np.ndarray:
    """One architecture per equal-count latency stratum (first device, full latency model)
    of a seeded pool, fastest first: the fixed ground-truth subset (K, 5)."""
    return stratified_choices(LUTLatencyModel(next(iter(ctx.luts.values()))),
                              plan.profile.truth_archs, plan.subset_seed)


def stratified_choices(model: LUTLatencyModel, n: int, seed: int) -> np.ndarray:
    """One architecture per equal-count stratum of ``model``'s latency over a pool of
    ``TRUTH_POOL`` distinct architectures drawn by ``seed``, fastest first (n, 5)."""
    choices = np.array([a.choices for a in SearchSpace().sample_unique(TRUTH_POOL, seed)])
    strata = np.array_split(np.argsort(model.predict(choices), kind="stable"), n)
    rng = np.random.default_rng(seed)
    return choices[[int(rng.choice(s)) for s in strata]]


def standalone_miou(run: Run, ctx: Context, arch: Arch, seed: int | None = None) -> float:
    """Stand-alone arch-val mIoU of ``arch``: a freshly initialised decoder trained with the
    run's final recipe, CE only (cached in the run dir, keyed by arch, recipe and config).
    ``seed`` (init and batch order): None takes the run's final-training seed; another value
    gives an independent training of the same architecture (a noise replicate)."""
    from linas.distill import evaluate_model, train_final
    from linas.run.final import own_splits
    from linas.supernet import Supernet

    seed = run.seeds["final"] if seed is None else int(seed)
    recipe = replace(run.cfg.final, seed=seed)
    key = digest({"arch": str(arch), "recipe": asdict(recipe), "config": run.cfg.sha256()})
    path = run.dir.root / "standalone" / f"{arch}-{key}.json"
    if path.is_file():
        return float(read_json(path)["miou"])
    num_classes, ignore = run.results["num_classes"], run.results.get("ignore_index", 255)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Supernet(num_classes, ctx.net.encoder).extract(arch)
    splits = own_splits(run, ctx, model)
    model.to(run.compute.device)
    steps = recipe.epochs * -(-len(splits["train"]) // recipe.batch_size)
    with run.rep.task(f"stand-alone training {arch}", steps) as advance:
        train_final(model, splits["train"], recipe, ignore, on_step=lambda: advance(1),
                    compute=run.compute)
    miou = float(evaluate_model(model, splits["arch_val"], num_classes, ignore,
                                compute=run.compute)["miou"])
    write_json_atomic(path, {"arch": str(arch), "miou": miou, "recipe": asdict(recipe)})
    return miou


def validate_measured(plan: Plan, run: Run, ctx: Context) -> dict[str, Any]:
    """End-to-end validation (:func:`linas.profiling.validate_lut`) of every device measured
    on this machine, once (cached): MAPE of fixed part + op sum and of + interactions."""
    from linas.profiling import validate_lut

    path = plan.out / "shared" / f"seed{plan.seeds[0]}" / "latency_validation.json"
    out = read_json(path) if path.is_file() else {}
    for dev in plan.cfg.devices:
        if dev.measure is None or dev.name in out:
            continue
        report = validate_lut(ctx.luts[dev.name], plan.profile.validate_archs, rep=run.rep)
        out[dev.name] = {k: report[k] for k in ("runtime", "n_archs", "mape", "spearman",
                                                "within_10pct", "has_interactions")}
        write_json_atomic(path, out)  # one device at a time: a kill loses one validation
    if not path.is_file():  # nothing measured here: the other seeds read the empty record
        write_json_atomic(path, out)
    return out


def measure_row(plan: Plan, row: Any, cfg: RunConfig, row_dir: Path, shared: SharedSeed,
                search_from: str | None, rep: Reporter) -> dict[str, Any]:
    """Run (or resume) ``row``'s run directory, then measure its supernet on the fixed
    architecture lists (cached in ``row_dir/ablation_measures.json``)."""
    from linas.run.stages import run_demo

    results = read_json(row_dir / "results.json") if (row_dir / "results.json").is_file() \
        else {}
    if not complete(results, cfg) or not (row_dir / "report.md").is_file():
        results = run_demo(cfg, row_dir, rep)
    else:  # finished: only its settings are checked (a changed config is refused)
        from linas.run.rundir import RunDir, refuse_changes

        run_dir = RunDir(row_dir)
        refuse_changes(run_dir, run_dir.stored_config() or {}, cfg.to_dict(), allowed=())
    ref = plan.reference_choices()
    key = digest({"truth": shared.truth_choices.tolist(), "reference": ref.tolist(),
                  "config": cfg.sha256()})
    path = row_dir / "ablation_measures.json"
    cached = read_json(path) if path.is_file() else {}
    if cached.get("key") != key:
        ws = supernet_miou(row_dir, np.vstack([shared.truth_choices, ref]), rep)
        k = len(shared.truth_choices)
        cached = {"key": key, "truth_ws_miou": ws[:k], "reference_ws_miou": ws[k:]}
        write_json_atomic(path, cached)
    return {"results": results, "pareto": read_json(row_dir / "pareto.json"),
            "truth_miou": shared.truth_miou, "truth_choices": shared.truth_choices,
            "reference_choices": ref, "validation": shared.validation,
            "search_from": search_from, **cached}


def complete(results: dict[str, Any], cfg: RunConfig) -> bool:
    """True when a row's run has deployed a model for every device."""
    deployed = results.get("deploy", {})
    return all(d.name in deployed for d in cfg.devices) and not results.get("deploy_stale")


def supernet_miou(row_dir: Path, choices: np.ndarray, rep: Reporter) -> list[float]:
    """Weight-sharing arch-val mIoU of ``choices`` in the row's trained supernet."""
    from linas.run.fronts import ws_miou
    from linas.run.search import run_search
    from linas.run.stages import session

    quiet = Reporter(quiet=True)
    with session(row_dir, None, quiet) as (run, ctx):
        run_search(run, ctx)  # loads the finished search (the supernet's weights)
        out = []
        with rep.task("weight-sharing evaluation (ablation subsets)", len(choices)) as adv:
            for row in choices:
                out.append(ws_miou(run, ctx, row))
                adv(1)
    return out


@functools.lru_cache(maxsize=64)
def _full_model(path: Path) -> LUTLatencyModel:
    return LUTLatencyModel(load_lut(path))  # rows share LUTs: built (and exhausted) once


def latency_models(row_dir: Path, names: Sequence[str]) -> dict[str, LUTLatencyModel]:
    """Every device's full latency model (fixed part + ops + pairs) from the row's LUTs: the
    one yardstick the hypervolume columns use for every row."""
    return {n: _full_model((row_dir / "luts" / f"{n}.json").resolve()) for n in names}


def read_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(Path(path).read_text()))
