"""``linas lut measure|check|validate|fingerprint``: latency look-up tables as commands (a thin
layer over :mod:`linas.profiling` and :mod:`linas.latency`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from linas._errors import ConfigError

lut_app = typer.Typer(no_args_is_help=True, help="Latency look-up tables.")

# Options shared by the timing commands (lut measure, lut fingerprint).
_Size = Annotated[str, typer.Option(help="Input size HxW.")]
_Runtime = Annotated[str, typer.Option(help="Runtime to time in: torch | onnxruntime | openvino.")]
_Device = Annotated[str, typer.Option(help="cpu | cuda (torch only).")]
_Threads = Annotated[int | None, typer.Option(help="Intra-op threads.")]
_Warmup = Annotated[int, typer.Option(help="Untimed calls per entry.")]
_Repeat = Annotated[int, typer.Option(help="Timed calls per entry.")]


MAX_SIDE = 8192


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``HxW`` (or a single ``N`` for NxN).

    Raises:
        ConfigError: not two multiples of 32 (the encoder downsamples 32x).
    """
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
    if max(dims) > MAX_SIDE:
        raise ConfigError(f"--size '{text}': a side over {MAX_SIDE} px; the model runs at "
                          "camera resolutions such as 480x640, pass one of those")
    return dims[0], dims[1]


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


def measure_command(out: Path, size: tuple[int, int], runtime: str, device: str,
                    threads: int | None, warmup: int, repeat: int, name: str | None,
                    quiet: bool, interactions: str = "none", fit_archs: int = 40) -> Path:
    """Measure a v2 LUT with its fixed part (and optional interactions); write it to ``out``.

    Raises:
        ConfigError: bad options (checked before any timing).
    """
    from linas.latency import save_lut
    from linas.latency.runtimes import get_runtime
    from linas.profiling import INTERACTION_METHODS, build_supernet, measure_supernet_lut
    from linas.progress import Reporter

    if interactions not in INTERACTION_METHODS:
        raise ConfigError(f"--interactions '{interactions}': valid: "
                          f"{', '.join(INTERACTION_METHODS)}")
    if warmup < 0 or repeat < 3:
        raise ConfigError("--warmup must be >= 0 and --repeat >= 3 (IQR filtering needs samples)")
    if interactions == "fit" and fit_archs < 10:
        raise ConfigError(f"--fit-archs {fit_archs}: need >= 10 architectures to fit")
    rt = get_runtime(runtime, device, threads)
    rep = Reporter(quiet)
    lut = measure_supernet_lut(build_supernet(device), size, warmup, repeat, threads,
                               name or f"local_{runtime}_{device}", rep, runtime=rt,
                               interactions=interactions, fit_archs=fit_archs)
    save_lut(lut, out)
    rep.info(f"wrote {out} in {lut.provenance['build_s']['total']:.0f} s")
    return out


def validate_command(lut_path: Path, n_archs: int, out: Path | None, seed: int,
                     warmup: int | None, repeat: int | None, quiet: bool) -> dict[str, Any]:
    """``linas lut validate``: load, validate, print the table and write the JSON."""
    from linas._io import write_json_atomic
    from linas.latency import load_lut
    from linas.latency.validate import format_table
    from linas.profiling import validate_lut
    from linas.progress import Reporter

    if n_archs < 2:
        raise ConfigError(f"--archs {n_archs}: need >= 2 architectures for rank correlations")
    lut = load_lut(lut_path)
    report = validate_lut(lut, n_archs, seed, warmup, repeat, Reporter(quiet))
    typer.echo(format_table(report))
    if out is not None:
        write_json_atomic(out, report)
    return report


def fingerprint_command(out: Path, size: tuple[int, int], runtime: str, device: str,
                        threads: int | None, warmup: int, repeat: int, name: str | None) -> Path:
    """Time the 10 reference architectures, decoder only, on this machine; write ``out``
    (see :func:`linas.profiling.measure_fingerprint`)."""
    from linas.latency.onboard import save_fingerprint
    from linas.profiling import measure_fingerprint

    save_fingerprint(measure_fingerprint(size, runtime, device, threads, warmup, repeat, name),
                     out)
    return out
