"""The state a run's stages share: config, run directory, stage seeds, results, timings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from linas.compute import CPU, Compute
from linas.config import RunConfig, stage_seeds
from linas.progress import Reporter
from linas.run.rundir import RunDir


@dataclass
class Run:
    """One run: ``results`` accumulates into ``results.json``."""

    cfg: RunConfig
    dir: RunDir
    rep: Reporter
    size: tuple[int, int] = (0, 0)
    seeds: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    compute: Compute = CPU

    @classmethod
    def start(cls, cfg: RunConfig, run_dir: RunDir, reporter: Reporter | None,
              compute: Compute = CPU) -> Run:
        """Stage seeds, run size and threads of ``cfg``; earlier results are kept."""
        from linas.run.prepare import run_size

        if cfg.compute.threads:
            torch.set_num_threads(cfg.compute.threads)
        run = cls(cfg, run_dir, reporter or Reporter(), run_size(cfg), stage_seeds(cfg.seed),
                  compute=compute)
        run.results.update(run_dir.read_results())
        run.timings.update(run.results.get("timings_s", {}))
        run.results.update(seed=cfg.seed, stage_seeds=run.seeds, config_sha256=cfg.sha256(),
                           compute=compute.describe())
        return run

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.rep.info(f"[bold]stage[/bold] {name}")
        start = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - start, 2)

    def save(self) -> None:
        """Write ``results.json`` (atomic), timings included; only rank 0 writes."""
        self.results["timings_s"] = self.timings
        if self.compute.main:
            self.dir.write_results(self.results)
