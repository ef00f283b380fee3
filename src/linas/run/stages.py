"""The run commands over a run directory: demo (every stage), search, pareto, train, report,
export. Each opens the directory under its config (refusing changed settings), runs its
stages, and writes ``results.json`` atomically."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from linas._errors import ConfigError
from linas._io import forbid_writes
from linas.compute import resolve_compute
from linas.config import RunConfig, load_config
from linas.progress import Reporter
from linas.run.final import run_final
from linas.run.fronts import run_fronts
from linas.run.prepare import Context, prepare
from linas.run.rundir import LATER_STAGE, RunDir, open_run, refuse_changes, run_lock
from linas.run.search import run_search
from linas.run.state import Run


def run_demo(cfg: RunConfig, out: Path, reporter: Reporter | None = None,
             restart: bool = False) -> dict[str, Any]:
    """Every stage: data, features, LUTs, search, fronts, a model per device, report."""
    with session(out, cfg, reporter, restart=restart) as (run, ctx):
        with run.stage("search"):
            state = run_search(run, ctx)
        run.save()
        with run.stage("pareto"):
            run.results["devices"] = run_fronts(run, ctx, state)
        run.save()
        with run.stage("final"):
            run_final(run, ctx, run.results["devices"])
        return finish(run)


def run_search_stage(cfg: RunConfig, out: Path, reporter: Reporter | None = None,
                     restart: bool = False) -> dict[str, Any]:
    """``linas search``: prepare and search, checkpointing into ``out``."""
    with session(out, cfg, reporter, restart=restart) as (run, ctx):
        with run.stage("search"):
            run_search(run, ctx)
        run.save()
        return run.results


@contextmanager
def session(out: Path, cfg: RunConfig | None, reporter: Reporter | None,
            restart: bool = False, stage: str | None = None) -> Iterator[tuple[Run, Context]]:
    """Open ``out`` for a command and prepare it (data, features, LUTs).

    ``stage`` None: a run under ``cfg`` (new, resumed or ``restart``-ed; changed settings are
    refused). ``stage`` ``pareto`` | ``train``: an existing run, whose config ``cfg`` may change
    only that stage's and later sections.

    Under torchrun, rank 0 holds the directory's lock, opens and prepares it, and writes every
    file; the other ranks wait for it, then prepare from what it wrote (quietly, and with
    writing forbidden), and take part in every computation.
    """
    rep = reporter or Reporter()
    requested = cfg if cfg is not None else RunDir(Path(out)).load_config()
    compute = resolve_compute(requested.compute.device, requested.compute.precision)
    if not compute.main:
        compute.barrier()  # rank 0 has opened the directory and prepared everything
        forbid_writes(f"rank {compute.rank} of a torchrun group; rank 0 writes")
        run = Run.start(RunDir(Path(out)).load_config(), RunDir(Path(out)),
                        Reporter(quiet=True), compute)
        yield run, prepare(run)
        return
    with run_lock(out, rep.warn):
        if stage is None:
            run_dir = open_run(out, requested, restart)
            run_cfg = requested
        else:
            run_dir, run_cfg = reopen(Path(out), stage, cfg)
        run = Run.start(run_cfg, run_dir, rep, compute)
        try:
            ctx = prepare(run)
        finally:
            compute.barrier()  # the other ranks prepare from what rank 0 wrote
        yield run, ctx


def reopen(out: Path, stage: str, requested: RunConfig | None) -> tuple[RunDir, RunConfig]:
    """An existing run for a later ``stage`` (``pareto`` | ``train``): a requested config may
    change only that stage's and later sections (then it is stored)."""
    run_dir = RunDir(out)
    cfg = run_dir.load_config()
    if requested is not None:
        changed = refuse_changes(run_dir, cfg.to_dict(), requested.to_dict(),
                                 LATER_STAGE[stage])
        if changed:
            cfg = requested
            run_dir.write_config(cfg)
    return run_dir, cfg


def run_pareto_stage(out: Path, cfg: RunConfig | None = None,
                     reporter: Reporter | None = None) -> dict[str, Any]:
    """``linas pareto``: fronts per device and the fleet plan from a searched run."""
    RunDir(Path(out)).load_config()  # a clear error before a lock is made in a non-run folder
    with session(out, cfg, reporter, stage="pareto") as (run, ctx):
        with run.stage("search"):  # completes an unfinished search, else only loads it
            state = run_search(run, ctx)
        with run.stage("pareto"):
            run.results["devices"] = run_fronts(run, ctx, state)
        stale = [n for n, card in run.results.get("deploy", {}).items()
                 if card["arch"] != run.results["devices"][n]["selected"]["arch"]]
        run.results["deploy_stale"] = stale
        if stale:
            run.rep.warn(f"the selection of {', '.join(stale)} changed; their deployed models "
                         f"are the old ones until `linas train --run {out}`")
        run.save()
        return run.results


def run_train_stage(out: Path, device: str | None = None, cfg: RunConfig | None = None,
                    reporter: Reporter | None = None) -> dict[str, Any]:
    """``linas train``: the final model of ``device`` (default: every device)."""
    run_dir = RunDir(Path(out))
    stored = run_dir.load_config()
    if device is not None:
        stored.device(device)
    if not run_dir.read_results().get("devices"):
        raise ConfigError(f"run {out}: has no fronts yet; run `linas pareto --run {out}` first")
    with session(out, cfg, reporter, stage="train") as (run, ctx):
        with run.stage("search"):  # completes an unfinished search, else only loads it
            run_search(run, ctx)
        with run.stage("final"):
            run_final(run, ctx, run.results["devices"], only=device)
        return finish(run)


def finish(run: Run) -> dict[str, Any]:
    """Write ``results.json``, ``report.md`` and the plots."""
    from linas.run.report import write_report

    run.save()
    if run.compute.main:
        write_report(run.dir)
    return run.results


def run_report(out: Path) -> Path:
    """``linas report``: regenerate ``report.md`` and the plots from the run directory."""
    run_dir = RunDir(Path(out))
    run_dir.load_config()  # a clear error when ``out`` holds no run
    from linas.run.report import write_report

    return write_report(run_dir)


def run_export(out: Path, device: str | None, dest: Path | None) -> list[Path]:
    """``linas export``: copy the deployed ONNX model of ``device`` (default: every device) to
    ``dest`` (a file for one device, else a folder).

    Raises:
        ConfigError: no such device, or the device's model is not trained yet.
    """
    run_dir = RunDir(Path(out))
    cfg = run_dir.load_config()
    names = [device] if device is not None else [d.name for d in cfg.devices]
    for name in names:
        cfg.device(name)
        if not (run_dir.deploy(name) / "model.onnx").is_file():
            raise ConfigError(f"run {out}: device '{name}' has no deployed model yet; run "
                              f"`linas train --run {out} --device {name}`")
    written: list[Path] = []
    for name in names:
        src = run_dir.deploy(name) / "model.onnx"
        if dest is None:
            written.append(src)
            continue
        target = dest if device is not None and dest.suffix == ".onnx" else \
            Path(dest) / f"{name}.onnx"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        written.append(target)
    return written


def build_config(config: Path | None, overrides: list[str], quick: bool) -> RunConfig:
    """The requested config: defaults, the quick profile, the file, ``--set``."""
    from linas.run.profiles import QUICK

    return load_config(config, overrides, QUICK if quick else None)
