"""The ``linas`` command line: a thin layer over :mod:`linas.pipeline` and the packages."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from linas._errors import ConfigError, LinasError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="LINAS+: hardware-aware NAS of a segmentation decoder for many devices.")
data_app = typer.Typer(no_args_is_help=True, help="Datasets.")
lut_app = typer.Typer(no_args_is_help=True, help="Latency look-up tables.")
app.add_typer(data_app, name="data")
app.add_typer(lut_app, name="lut")

_DEBUG = {"on": False}


@app.callback()
def main(debug: Annotated[bool, typer.Option(help="Show tracebacks on errors.")] = False) -> None:
    _DEBUG["on"] = debug


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``HxW`` (or a single ``N`` for NxN)."""
    parts = text.lower().split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if len(dims) == 1:
        dims = (dims[0], dims[0])
    if len(dims) != 2 or min(dims) < 32 or any(d % 32 for d in dims):
        raise ConfigError(f"--size '{text}': expected HxW with both multiples of 32 "
                          "(the encoder downsamples 32x), e.g. 128x128")
    return dims  # type: ignore[return-value]


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Run directory to write.")] = Path("runs/demo"),
    lut_dir: Annotated[Path | None, typer.Option(help="Folder of further device LUTs.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for data, search and training.")] = 0,
    encoder_weights: Annotated[str, typer.Option(
        help="imagenet | random | auto | <state_dict file>.")] = "auto",
    quick: Annotated[bool, typer.Option(help="Tiny smoke-test run, not the real demo.")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
) -> None:
    """Synthesise data, measure this machine's LUT, search, build fronts, train and export."""
    from linas.pipeline import DemoConfig, quick_config, run_demo
    from linas.progress import Reporter

    _check_lut_dir(lut_dir)
    cfg = DemoConfig(out=out, lut_dir=lut_dir, seed=seed, encoder_weights=encoder_weights)
    if quick:
        cfg = quick_config(cfg)
    start = time.perf_counter()
    results = run_demo(cfg, Reporter(quiet))
    fin = results["final"]
    typer.echo(f"done in {time.perf_counter() - start:.0f} s: {len(results['devices'])} devices; "
               f"final {fin['arch']} test mIoU {fin['test_miou']:.3f}, "
               f"{fin['measured_latency_ms']:.1f} ms/image measured "
               f"(C3 {'met' if fin['meets_c3'] else 'NOT met'}); see {out / 'report.md'}")


@app.command()
def search(
    out: Annotated[Path, typer.Option(help="Run directory to write.")],
    lut_dir: Annotated[Path | None, typer.Option(help="Folder of further device LUTs.")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    encoder_weights: Annotated[str, typer.Option()] = "auto",
    quick: Annotated[bool, typer.Option(help="Tiny smoke-test run.")] = False,
    quiet: Annotated[bool, typer.Option()] = False,
) -> None:
    """Prepare data and LUTs and run the search (checkpointed; rerun to resume)."""
    from linas.pipeline import DemoConfig, quick_config, run_search_stage
    from linas.progress import Reporter

    _check_lut_dir(lut_dir)
    cfg = DemoConfig(out=out, lut_dir=lut_dir, seed=seed, encoder_weights=encoder_weights)
    res = run_search_stage(quick_config(cfg) if quick else cfg, Reporter(quiet))
    typer.echo(f"search done: argmax architecture {res['search']['argmax_arch']}; "
               f"next: linas pareto --run {out}")


@app.command()
def pareto(
    run: Annotated[Path, typer.Option(help="A searched run directory.")],
    quiet: Annotated[bool, typer.Option()] = False,
) -> None:
    """Sample, evaluate by weight sharing, and write every device's front and selection."""
    from linas.pipeline import run_pareto_stage
    from linas.progress import Reporter

    res = run_pareto_stage(run, Reporter(quiet))
    for name, dev in res["devices"].items():
        sel = dev["selected"]
        typer.echo(f"{name}: front {len(dev['front'])} points, HV {dev['hypervolume']:.4g}; "
                   f"selected {sel['arch']} ({sel['latency_ms']:.3g} ms, mIoU "
                   f"{sel['miou']:.3f}, budget {'met' if sel['meets_budget'] else 'NOT met'})")


@app.command()
def train(
    run: Annotated[Path, typer.Option(help="A run directory with fronts.")],
    device: Annotated[str, typer.Option(help="Device whose selection to train.")] =
    "local_torch_cpu",
    quiet: Annotated[bool, typer.Option()] = False,
) -> None:
    """Train, test, export and time the selected architecture of one device."""
    from linas.pipeline import run_train_stage
    from linas.progress import Reporter

    fin = run_train_stage(run, device, Reporter(quiet))["final"]
    typer.echo(f"{fin['arch']}: test mIoU {fin['test_miou']:.3f}, "
               f"{fin['measured_latency_ms']:.1f} ms/image on this machine; ONNX {fin['onnx']}")


def _check_lut_dir(lut_dir: Path | None) -> None:
    if lut_dir is not None and not lut_dir.is_dir():
        raise ConfigError(f"--lut-dir {lut_dir}: no such folder; pass a folder of LUT .json files")


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


@lut_app.command("measure")
def lut_measure(
    out: Annotated[Path, typer.Option(help="LUT file to write (schema v2).")],
    size: Annotated[str, typer.Option(help="Input size HxW.")] = "128x128",
    runtime: Annotated[str, typer.Option(help="Runtime to time in.")] = "torch",
    device: Annotated[str, typer.Option(help="cpu | cuda.")] = "cpu",
    threads: Annotated[int | None, typer.Option(help="Intra-op threads.")] = None,
    warmup: Annotated[int, typer.Option()] = 5,
    repeat: Annotated[int, typer.Option()] = 30,
    name: Annotated[str | None, typer.Option(help="Device name recorded in the LUT.")] = None,
    quiet: Annotated[bool, typer.Option()] = False,
) -> None:
    """Time every decoder candidate (and the fixed part) on this machine."""
    from linas.lutcli import measure_command

    measure_command(out, parse_size(size), runtime, device, threads, warmup, repeat, name, quiet)


@lut_app.command("check")
def lut_check(
    paths: Annotated[list[Path], typer.Argument(help="LUT files or folders.")],
    strict: Annotated[bool, typer.Option(help="Exit 1 on warnings too.")] = False,
) -> None:
    """Report missing keys, bad values, high spread, non-monotonic widths, naming issues."""
    from linas.latency import find_luts
    from linas.latency.check import check_many, format_findings

    results = check_many(find_luts(list(paths)))
    typer.echo(format_findings(results, max_per_code=5))
    severities = {f.severity for fs in results.values() for f in fs}
    if "error" in severities or (strict and "warning" in severities):
        raise typer.Exit(1)


def entrypoint() -> None:
    """Console script: run the app, turning user errors into one line and exit code 2."""
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
    except (typer.Abort, KeyboardInterrupt):
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # click usage errors carry their own message and exit code
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)
