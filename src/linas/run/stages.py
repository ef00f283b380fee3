"""The run commands over a run directory: demo (every stage), search, pareto, train, report,
export. Each opens the directory under its config (refusing changed settings), runs its
stages, and writes ``results.json`` atomically."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from linas._errors import ConfigError
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
    rep = reporter or Reporter()
    with run_lock(out, rep.warn):
        return _demo(Run.start(cfg, open_run(out, cfg, restart), rep))


def _demo(run: Run) -> dict[str, Any]:
    ctx = prepare(run)
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
    rep = reporter or Reporter()
    with run_lock(out, rep.warn):
        run = Run.start(cfg, open_run(out, cfg, restart), rep)
        ctx = prepare(run)
        with run.stage("search"):
            run_search(run, ctx)
        run.save()
        return run.results


def resume(out: Path, stage: str, overrides: RunConfig | None,
           reporter: Reporter | None) -> tuple[Run, Context, Any]:
    """Reopen a searched run for a later ``stage`` (``pareto`` | ``train``): a requested config
    may change only that stage's and later sections; the search completes or is loaded."""
    run_dir = RunDir(Path(out))
    cfg = run_dir.load_config()
    if overrides is not None:
        changed = refuse_changes(run_dir, cfg.to_dict(), overrides.to_dict(), LATER_STAGE[stage])
        if changed:
            cfg = overrides
            run_dir.write_config(cfg)
    run = Run.start(cfg, run_dir, reporter)
    ctx = prepare(run)
    with run.stage("search"):  # completes an unfinished search, else only loads it
        state = run_search(run, ctx)
    return run, ctx, state


def run_pareto_stage(out: Path, cfg: RunConfig | None = None,
                     reporter: Reporter | None = None) -> dict[str, Any]:
    """``linas pareto``: fronts per device and the fleet plan from a searched run."""
    RunDir(Path(out)).load_config()  # a clear error before a lock is made in a non-run folder
    reporter = reporter or Reporter()
    with run_lock(out, reporter.warn):
        run, ctx, state = resume(out, "pareto", cfg, reporter)
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
    reporter = reporter or Reporter()
    with run_lock(out, reporter.warn):
        run, ctx, _ = resume(out, "train", cfg, reporter)
        with run.stage("final"):
            run_final(run, ctx, run.results["devices"], only=device)
        return finish(run)


def finish(run: Run) -> dict[str, Any]:
    """Write ``results.json``, ``report.md`` and the plots."""
    from linas.run.report import write_report

    run.save()
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
