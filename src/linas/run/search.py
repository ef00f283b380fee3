"""The search stage: the configured strategy over every device at once, each device with its
own budget, seeded from the run's seed, checkpointed in ``RUN/checkpoints``."""

from __future__ import annotations

from dataclasses import asdict, fields, replace
from typing import Any

from linas.run.prepare import Context
from linas.run.resources import check_checkpoint_disk, search_memory_bytes, search_memory_line
from linas.run.state import Run
from linas.search import (
    BilevelSearch,
    DeviceTarget,
    HypernetDevice,
    HypernetSearch,
    SearchConfig,
)


def search_config(run: Run) -> SearchConfig:
    """The plain :class:`SearchConfig` of the run (strategy keys dropped, seed derived)."""
    names = {f.name for f in fields(SearchConfig)}
    values = {k: v for k, v in asdict(run.cfg.search).items() if k in names}
    return replace(SearchConfig(**values), seed=run.seeds["search"])


def hypernet_devices(run: Run, ctx: Context) -> list[HypernetDevice]:
    """Every device of the run as the hypernetwork sees it (config order)."""
    return [HypernetDevice.from_model(d.name, ctx.models[d.name], d.budget_ms)
            for d in run.cfg.devices]


def run_search(run: Run, ctx: Context) -> Any:
    """Run (or resume, or load a finished) search; returns its state."""
    cfg, ckpt = search_config(run), run.dir.checkpoints / "search.pt"
    if not ckpt.is_file() and run.compute.main:
        need, line = check_checkpoint_disk(ctx.net, run.dir.checkpoints, cfg.momentum,
                                           cfg.split_layer, soft_steps(cfg))
        run.rep.info(line)
        run.results["checkpoint_estimate_bytes"] = need
    ignore = run.results.get("ignore_index", 255)
    strategy = run.cfg.search.strategy
    if strategy == "hypernet":
        every = hypernet_devices(run, ctx)
        train = [d for d in every if d.name != run.cfg.search.holdout]
        search: Any = HypernetSearch(ctx.net, train, cfg, run.cfg.hypernet, ignore,
                                     run.compute)
        report_memory(run, search)
        state = search.fit(ctx.splits["train"], ctx.splits["arch_val"], ckpt, run.rep,
                           "searching (hypernetwork)", run.cfg.compute.checkpoint_every_s)
        run.results["search"] = _hypernet_summary(run, cfg, state, every, train)
        return state
    devices = [DeviceTarget(d.name, ctx.models[d.name], d.budget_ms)
               for d in run.cfg.devices]
    search = BilevelSearch(ctx.net, devices, cfg, ignore, run.compute)
    report_memory(run, search)
    state = search.fit(ctx.splits["train"], ctx.splits["arch_val"], ckpt, run.rep,
                       "searching (bi-level)", run.cfg.compute.checkpoint_every_s)
    run.results["search"] = {"strategy": "bilevel", "config": asdict(cfg),
                             "history": state.history, "argmax_arch": str(state.best_arch()),
                             "devices": {d.name: {"target_ms": d.target_ms} for d in devices}}
    return state


def soft_steps(cfg: SearchConfig) -> bool:
    """Whether the search's schedule has soft steps (every candidate trained at once)."""
    return cfg.soft_epochs > 0 and cfg.train_mode == "soft" and cfg.search_epochs > 0


def report_memory(run: Run, search: Any) -> None:
    """Print (and record) the estimated peak memory of the search's steps before they start;
    a warning, with the fixes, when it exceeds the available RAM (CPU runs)."""
    cfg = search.cfg
    soft = soft_steps(cfg)
    batch = -(-cfg.batch_size // run.compute.world)
    states = len(search.fair.optimizers)
    need = search_memory_bytes(search.net, batch, run.size, soft, cfg.momentum, cfg.split_layer)
    run.results["search_memory_estimate_bytes"] = need
    if run.compute.device.type != "cpu":
        return  # the model is of this CPU's host memory
    line = search_memory_line(need, batch, run.size, soft, states)
    (run.rep.warn if "OUT OF MEMORY" in line else run.rep.info)(line)


def _hypernet_summary(run: Run, cfg: SearchConfig, state: Any, every: list[HypernetDevice],
                      train: list[HypernetDevice]) -> dict[str, Any]:
    holdout = run.cfg.search.holdout
    return {"strategy": "hypernet", "config": asdict(cfg), "hypernet": asdict(run.cfg.hypernet),
            "history": state.history, "holdout": holdout,
            "train_devices": [d.name for d in train],
            "devices": {d.name: {"target_ms": d.budget_ms, "zero_shot": d.name == holdout,
                                 "budget_feasible": d.budget_feasible,
                                 "embedding": state.embedder(d.raw).tolist()} for d in every}}
