"""The ``linas`` command line: a thin layer over :mod:`linas.pipeline` and the packages."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from linas._errors import ConfigError, LinasError
from linas.cli.predictor import predictor_app

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="LINAS+: hardware-aware NAS of a segmentation decoder for many devices.")
data_app = typer.Typer(no_args_is_help=True, help="Datasets.")
lut_app = typer.Typer(no_args_is_help=True, help="Latency look-up tables.")
app.add_typer(data_app, name="data")
app.add_typer(lut_app, name="lut")
app.add_typer(predictor_app, name="predictor")

_DEBUG = {"on": False}
# Options shared by the timing commands (lut measure, lut fingerprint).
_Size = Annotated[str, typer.Option(help="Input size HxW.")]
_Runtime = Annotated[str, typer.Option(help="Runtime to time in: torch | onnxruntime | openvino.")]
_Device = Annotated[str, typer.Option(help="cpu | cuda (torch only).")]
_Threads = Annotated[int | None, typer.Option(help="Intra-op threads.")]
_Warmup = Annotated[int, typer.Option(help="Untimed calls per entry.")]
_Repeat = Annotated[int, typer.Option(help="Timed calls per entry.")]
_STRATEGY_HELP = ("Search strategy: bilevel (baseline LINAS) | hypernet (one preference-"
                  "conditioned hypernetwork for every device, I1).")
_HOLDOUT_HELP = "hypernet: device left out of training; its front is generated zero-shot."


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
    finetune_encoder: Annotated[bool, typer.Option(
        help="Train the encoder too (slow on a CPU; default: frozen, features cached).")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
    strategy: Annotated[str, typer.Option(help=_STRATEGY_HELP)] = "bilevel",
    holdout: Annotated[str | None, typer.Option(help=_HOLDOUT_HELP)] = None,
) -> None:
    """Synthesise data, measure this machine's LUT, search, build fronts, train and export."""
    from linas.pipeline import DemoConfig, quick_config, run_demo
    from linas.progress import Reporter

    _check_lut_dir(lut_dir)
    check_strategy(strategy, holdout)
    cfg = DemoConfig(out=out, lut_dir=lut_dir, seed=seed, encoder_weights=encoder_weights,
                     strategy=strategy, holdout=holdout, finetune_encoder=finetune_encoder)
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
    strategy: Annotated[str, typer.Option(help=_STRATEGY_HELP)] = "bilevel",
    holdout: Annotated[str | None, typer.Option(help=_HOLDOUT_HELP)] = None,
    train_mode: Annotated[str, typer.Option(
        help="I2 weight step: soft (baseline) | single-path (one sampled subnet).")] = "soft",
    path_sampler: Annotated[str, typer.Option(
        help="single-path sampler: uniform | gumbel (hard sample of the logits).")] = "uniform",
    calr: Annotated[str, typer.Option(
        help="I2 complexity-aware LR: none | seed (0.5+0.5*flops/max) | dynas.")] = "none",
    momentum: Annotated[str, typer.Option(
        help="I2 optimizer state: shared | seed (3 FLOPs bins) | dynas (per op).")] = "shared",
    split_layer: Annotated[int, typer.Option(
        help="dynas momentum: layer (0-4) whose op choice picks the state.")] = 0,
) -> None:
    """Prepare data and LUTs and run the search (checkpointed; rerun to resume)."""
    from dataclasses import replace

    from linas.pipeline import DemoConfig, quick_config, run_search_stage
    from linas.progress import Reporter
    from linas.search import SearchConfig

    _check_lut_dir(lut_dir)
    check_strategy(strategy, holdout)
    fair = replace(SearchConfig(), train_mode=train_mode, path_sampler=path_sampler, calr=calr,
                   momentum=momentum, split_layer=split_layer)
    cfg = DemoConfig(out=out, lut_dir=lut_dir, seed=seed, encoder_weights=encoder_weights,
                     strategy=strategy, holdout=holdout, search=fair)
    res = run_search_stage(quick_config(cfg) if quick else cfg, Reporter(quiet))
    done = (f"hypernetwork trained on {len(res['search']['train_devices'])} devices"
            if strategy == "hypernet" else
            f"argmax architecture {res['search']['argmax_arch']}")
    typer.echo(f"search done: {done}; next: linas pareto --run {out}")


@app.command()
def pareto(
    run: Annotated[Path, typer.Option(help="A searched run directory.")],
    quiet: Annotated[bool, typer.Option()] = False,
    strategy: Annotated[str | None, typer.Option(
        help="Candidates: baseline (1,000 sampled, 100 evaluated) | zero-cost (I3: 10,000 "
             "scored by NEAR + LUT latency, 500 pre-filtered, 100 evaluated). Default: the "
             "run config's (baseline).")] = None,
) -> None:
    """Sample, evaluate by weight sharing, and write every device's front and selection.

    A hypernet run (``linas search --strategy hypernet``) sweeps preferences per device instead
    of sampling candidates.
    """
    from linas.pipeline import run_pareto_stage
    from linas.progress import Reporter

    res = run_pareto_stage(run, Reporter(quiet), strategy)
    info = res.get("pareto_search", {})
    if info.get("strategy") == "zero-cost":
        typer.echo(f"zero-cost: {info['sampled']} scored by {info['proxy']} in "
                   f"{info['scoring_s']} s, {info['prefiltered']} pre-filtered, "
                   f"{info['evaluated']} evaluated; proxy vs mIoU Spearman "
                   f"{info.get('proxy_spearman_rho_evaluated')}")
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


def check_strategy(strategy: str, holdout: str | None) -> None:
    """Validate ``--strategy`` and ``--holdout`` before any work (see linas.hypernet_stage)."""
    from linas.hypernet_stage import check_strategy as check

    check(strategy, holdout)


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
    size: _Size = "128x128",
    runtime: _Runtime = "torch",
    device: _Device = "cpu",
    threads: _Threads = None,
    warmup: _Warmup = 5,
    repeat: _Repeat = 30,
    name: Annotated[str | None, typer.Option(help="Device name recorded in the LUT.")] = None,
    interactions: Annotated[str, typer.Option(
        help="Adjacent-layer terms: none | fit (from end-to-end runs) | full (every pair) | "
             "context (in-graph cost of each candidate, one layer changed at a time).")
    ] = "none",
    fit_archs: Annotated[int, typer.Option(help="Architectures timed for --interactions fit.")
                         ] = 40,
    quiet: Annotated[bool, typer.Option()] = False,
) -> None:
    """Time every decoder candidate (and the fixed part) on this machine in one runtime
    (torch | onnxruntime | openvino)."""
    from linas.lutcli import measure_command

    measure_command(out, parse_size(size), runtime, device, threads, warmup, repeat, name, quiet,
                    interactions, fit_archs)


@lut_app.command("validate")
def lut_validate(
    lut: Annotated[Path, typer.Option(help="A LUT measured on this machine (schema v2).")],
    archs: Annotated[int, typer.Option(help="Held-out architectures to time end to end.")] = 50,
    out: Annotated[Path | None, typer.Option(help="JSON report to write.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the held-out sample.")] = 2000,
    warmup: Annotated[int | None, typer.Option(help="Default: the LUT's.")] = None,
    repeat: Annotated[int | None, typer.Option(help="Default: the LUT's.")] = None,
    quiet: Annotated[bool, typer.Option()] = False,
) -> None:
    """Time random extracted architectures end to end in the LUT's runtime and report MAPE,
    Spearman, Kendall and within-10% of (a) op sum, (b) + fixed part, (c) + interactions."""
    from linas.lutcli import validate_command

    validate_command(lut, archs, out, seed, warmup, repeat, quiet)


@lut_app.command("fingerprint")
def lut_fingerprint(
    out: Annotated[Path, typer.Option(help="Fingerprint file to write (JSON).")],
    size: _Size = "128x128",
    runtime: _Runtime = "torch",
    device: _Device = "cpu",
    threads: _Threads = None,
    warmup: _Warmup = 5,
    repeat: _Repeat = 30,
    name: Annotated[str | None, typer.Option(help="Device name recorded in the file.")] = None,
) -> None:
    """Time the 10 reference architectures (decoder only) on this machine, for onboarding
    with `linas predictor onboard --fingerprint`."""
    from linas.cli.predictor import fingerprint_command

    fingerprint_command(out, parse_size(size), runtime, device, threads, warmup, repeat, name)
    typer.echo(f"wrote {out}")


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
    except Exception as exc:  # click usage errors (typer vendors click) carry message and code
        show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if callable(show) and isinstance(exit_code, int):
            show()
            sys.exit(exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)
