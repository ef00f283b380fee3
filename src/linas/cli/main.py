"""The ``linas`` command line: thin commands over :mod:`linas.run` and the packages.

Every run command (``demo``, ``search``, ``pareto``, ``train``) takes ``--config FILE`` and
repeated ``--set section.key=value``; see :mod:`linas.config`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from linas._errors import ConfigError, LinasError
from linas.cli.lut import lut_app, parse_size
from linas.cli.predictor import predictor_app

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="LINAS+: hardware-aware NAS of a segmentation decoder for many devices.")
data_app = typer.Typer(no_args_is_help=True, help="Datasets.")
app.add_typer(data_app, name="data")
app.add_typer(lut_app, name="lut")
app.add_typer(predictor_app, name="predictor")

_DEBUG = {"on": False}
_Config = Annotated[Path | None, typer.Option(
    "--config", help="Run config (YAML/JSON); see `linas init`.")]
_Set = Annotated[list[str] | None, typer.Option(
    "--set", help="Override a config key: section.key=value (repeatable), e.g. "
                  "--set seed=1 --set devices.rpi5.budget_ms=100.")]
_Quick = Annotated[bool, typer.Option(help="Tiny smoke-test profile, not the real run.")]
_Quiet = Annotated[bool, typer.Option(help="No progress bars.")]
_Restart = Annotated[bool, typer.Option(
    help="Delete what an earlier run wrote in --out and start over.")]
_RunDir = Annotated[Path, typer.Option("--run", help="A run directory.")]


@app.callback()
def main(debug: Annotated[bool, typer.Option(help="Show tracebacks on errors.")] = False) -> None:
    _DEBUG["on"] = debug


@app.command()
def init(
    out: Annotated[Path, typer.Option(help="Config file to write.")] = Path("linas.yaml"),
    data: Annotated[Path | None, typer.Option(help="Your dataset folder.")] = None,
    kind: Annotated[str | None, typer.Option(
        help="Dataset layout: folder | mvtec | cityscapes (default folder with --data).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
) -> None:
    """Write a commented starter run config."""
    from linas.data import available_datasets
    from linas.run.starter import starter_config

    if out.exists() and not force:
        raise ConfigError(f"--out {out}: exists; pass --force to replace it or another --out")
    if kind is not None and kind not in available_datasets() + ["synthetic"]:
        from linas._errors import unknown_name

        raise unknown_name("dataset kind", kind, available_datasets() + ["synthetic"])
    if data is not None and not data.is_dir():
        raise ConfigError(f"--data {data}: no such folder; pass your dataset's folder")
    from linas._io import write_text_atomic

    write_text_atomic(out, starter_config(out.name, None if data is None else data.resolve(), kind))
    typer.echo(f"wrote {out}; edit it, then: linas demo --config {out} --out runs/mine")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Run directory to write.")] = Path("runs/demo"),
    config: _Config = None,
    set_: _Set = None,
    quick: _Quick = False,
    quiet: _Quiet = False,
    restart: _Restart = False,
) -> None:
    """Every stage: data, LUTs, search, fronts, then a trained, exported, checked model per
    device (default: the built-in synthetic data, this machine only)."""
    from linas.progress import Reporter
    from linas.run import build_config, run_demo

    cfg = build_config(config, set_ or [], quick)
    start = time.perf_counter()
    results = run_demo(cfg, out, Reporter(quiet), restart)
    typer.echo(f"done in {time.perf_counter() - start:.0f} s: {len(results['devices'])} "
               f"device(s); see {out / 'report.md'}")
    _echo_cards(results)


@app.command()
def search(
    out: Annotated[Path, typer.Option(help="Run directory to write.")],
    config: _Config = None,
    set_: _Set = None,
    quick: _Quick = False,
    quiet: _Quiet = False,
    restart: _Restart = False,
) -> None:
    """Prepare data and LUTs and run the search (checkpointed; rerun to resume)."""
    from linas.progress import Reporter
    from linas.run import build_config, run_search_stage

    cfg = build_config(config, set_ or [], quick)
    res = run_search_stage(cfg, out, Reporter(quiet), restart)
    s = res["search"]
    done = (f"hypernetwork trained on {len(s['train_devices'])} devices"
            if s["strategy"] == "hypernet" else f"argmax architecture {s['argmax_arch']}")
    typer.echo(f"search done: {done}; next: linas pareto --run {out}")


@app.command()
def pareto(
    run: _RunDir,
    config: _Config = None,
    set_: _Set = None,
    quiet: _Quiet = False,
) -> None:
    """Evaluate candidates by weight sharing; write every device's front, selection and the
    fleet plan (only pareto.* and final.* may differ from the search's config)."""
    from linas.progress import Reporter
    from linas.run import run_pareto_stage

    res = run_pareto_stage(run, _stage_config(run, config, set_), Reporter(quiet))
    for name, dev in res["devices"].items():
        sel = dev["selected"]
        typer.echo(f"{name}: front {len(dev['front'])} points, HV {dev['hypervolume']:.4g}; "
                   f"selected {sel['arch']} ({sel['latency_ms']:.3g} ms, mIoU "
                   f"{sel['miou']:.3f}, budget {'met' if sel['meets_budget'] else 'NOT met'})")
    plan = res["fleet_plan"]
    typer.echo(f"fleet plan: {plan['n_decoders']} decoder(s) for {len(res['devices'])} devices")


@app.command()
def train(
    run: _RunDir,
    device: Annotated[str | None, typer.Option(
        help="Device whose selection to train (default: every device).")] = None,
    config: _Config = None,
    set_: _Set = None,
    quiet: _Quiet = False,
) -> None:
    """Train, test, export and check the selected model of each device (or one)."""
    from linas.progress import Reporter
    from linas.run import run_train_stage

    res = run_train_stage(run, device, _stage_config(run, config, set_), Reporter(quiet))
    _echo_cards(res, device)


@app.command()
def export(
    run: _RunDir,
    device: Annotated[str | None, typer.Option(help="One device (default: every device).")
                      ] = None,
    out: Annotated[Path | None, typer.Option(
        help="File (.onnx, with --device) or folder to copy the model(s) to.")] = None,
) -> None:
    """Write the deployed ONNX model of a device (or of every device)."""
    from linas.run import run_export

    for path in run_export(run, device, out):
        typer.echo(str(path))


@app.command()
def report(run: _RunDir) -> None:
    """Regenerate report.md and the plots from the run directory alone."""
    from linas.run import run_report

    typer.echo(f"wrote {run_report(run)}")


@app.command()
def ablation(
    out: Annotated[Path, typer.Option(help="Folder for the rows' run directories and the "
                                           "table.")] = Path("runs/ablation"),
    config: _Config = None,
    set_: _Set = None,
    seeds: Annotated[str, typer.Option(help="Seeds, comma-separated.")] = "0,1,2",
    rows: Annotated[str | None, typer.Option(
        help="Rows to run (default all): baseline,i2,i2-i1,i2-i1-i3,i2-i1-i3-i4,full.")] = None,
    profile: Annotated[str, typer.Option(
        help="small: scaled to a 2-core CPU; paper: the config as given (GPU).")] = "small",
    truth_archs: Annotated[int | None, typer.Option(
        help="Stand-alone trained architectures (Kendall tau column); default: the profile's.")
    ] = None,
    reference_archs: Annotated[int | None, typer.Option(
        help="Random reference architectures (hypervolume columns); default: the profile's.")
    ] = None,
    validate_archs: Annotated[int | None, typer.Option(
        help="Architectures timed end to end (MAPE column); default: the profile's.")] = None,
    quiet: _Quiet = False,
) -> None:
    """The ablation table (Baseline, +I2, +I2+I1, +I2+I1+I3, +I2+I1+I3+I4, Full): every row
    on the same data, budgets and seeds; rerun the same command to resume."""
    from linas.progress import Reporter
    from linas.run import build_config
    from linas.run.ablation import parse_rows, parse_seeds, run_ablation
    from linas.run.ablation import profile as get_profile

    cfg = build_config(config, set_ or [], False)
    chosen, seed_list = parse_rows(rows), parse_seeds(seeds)
    prof = get_profile(profile, truth_archs, reference_archs, validate_archs)
    start = time.perf_counter()
    table = run_ablation(cfg, seed_list, out, chosen, prof, Reporter(quiet))
    typer.echo(f"done in {time.perf_counter() - start:.0f} s: {len(table['rows'])} row(s) x "
               f"{len(seed_list)} seed(s); see {out / 'ablation.md'}")
    for c in table["claims"]:
        typer.echo(f"  {c['claim']}: {c['figure']}: {c['verdict']}")


def _stage_config(run: Path, config: Path | None, set_: list[str] | None):  # type: ignore[no-untyped-def]
    """The config a later stage asks for: the run's stored config (or --config) + --set, or
    None when neither is given (the stored config as it is)."""
    if config is None and not set_:
        return None
    from linas.config import load_config
    from linas.run import RunDir

    base = config if config is not None else RunDir(run).config
    if not base.is_file():
        RunDir(run).load_config()  # the clear "not a run directory" error
    return load_config(base, set_ or [])


def _echo_cards(results: dict, only: str | None = None) -> None:  # type: ignore[type-arg]
    for name, card in results.get("deploy", {}).items():
        if only is not None and name != only:
            continue
        measured = card["measured_latency_ms"]
        how = (f"{measured:.1f} ms measured here" if measured is not None else
               f"{card['predicted_latency_ms']:.3g} ms predicted (LUT)")
        typer.echo(f"{name}: {card['arch']} test mIoU {card['test_miou']:.3f}, {how}, budget "
                   f"{card['budget_ms']:g} ms {'met' if card['meets_budget'] else 'NOT met'}; "
                   f"{card['onnx']}")


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(help="Dataset folder to write.")],
    n: Annotated[int, typer.Option(help="Number of images.")] = 320,
    size: Annotated[str, typer.Option(help="HxW.")] = "128x128",
    seed: Annotated[int, typer.Option()] = 0,
    force: Annotated[bool, typer.Option(help="Replace a dataset already in --out.")] = False,
) -> None:
    """Write the synthetic sealer dataset (images/, masks/, dataset.json)."""
    from linas.data import generate_sealer_dataset

    if n < 1:
        raise ConfigError(f"--n {n}: need at least one image")
    path = generate_sealer_dataset(out, n, parse_size(size), seed, overwrite=force)
    typer.echo(f"wrote {n} images to {path}")


def entrypoint() -> None:
    """Console script: run the app, turning user errors into one line and exit code 2.

    Under torchrun only rank 0 prints its summary (every rank still reports its errors)."""
    if os.environ.get("RANK", "0") != "0":
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    try:
        # with standalone_mode=False click returns the exit code of typer.Exit instead of exiting
        code = app(standalone_mode=False)
    except LinasError as exc:
        if _DEBUG["on"]:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except OSError as exc:  # a path the user gave that cannot be read or written
        if _DEBUG["on"]:
            raise
        where = exc.filename or "a file"
        print(f"error: {where}: {exc.strerror or exc}; check the path (a folder where a file "
              "is expected, or the reverse?) and its permissions", file=sys.stderr)
        sys.exit(2)
    except MemoryError:
        print("error: out of memory; use a smaller data.size, data.n_images or batch size",
              file=sys.stderr)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # click usage errors (typer vendors click) carry message and code
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            sys.exit(exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)
