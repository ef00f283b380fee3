"""``linas predictor train|eval|onboard``: the cross-hardware latency predictor as commands (a
thin layer over :mod:`linas.latency.predictor`). ``linas lut fingerprint``, which measures the
fingerprint a new device is onboarded from, is in :mod:`linas.cli.lut`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from linas._errors import ConfigError

# torch-heavy imports stay inside the commands so that `linas --help` starts fast
if TYPE_CHECKING:
    from linas.latency.predictor import PredictorConfig

predictor_app = typer.Typer(no_args_is_help=True,
                            help="Cross-hardware latency predictor (train, evaluate, onboard).")

LutsOpt = Annotated[list[Path], typer.Option(
    "--luts", help="LUT files or folders (repeat the option, or list more paths after it).")]
ExtraArg = Annotated[list[Path] | None, typer.Argument(help="More LUT files or folders.")]
RankOpt = Annotated[int, typer.Option(help="Shape dimensions of the device embedding.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of architecture sampling.")]
UnknownOpt = Annotated[bool, typer.Option(
    help="Accept LUTs of devices without a spec (imputed features, with a warning).")]


@predictor_app.command("train")
def train(
    luts: LutsOpt,
    out: Annotated[Path, typer.Option(help="Predictor file to write (.safetensors).")],
    extra: ExtraArg = None,
    rank: RankOpt = 5,
    seed: SeedOpt = 0,
    allow_unknown: UnknownOpt = False,
) -> None:
    """Train the predictor on every LUT given."""
    from linas.latency.measure import num_threads
    from linas.latency.predictor_train import load_devices, train_predictor

    devices = load_devices([*luts, *(extra or [])], allow_unknown)
    with num_threads(1):  # tiny tensors: one thread is fastest and leaves the CPU to others
        model = train_predictor(devices, _config(rank, seed))
    model.save(out)
    fit = model.meta["fit_rms_log_error"]
    typer.echo(f"wrote {out}: {len(devices)} devices, rank {model.rank}; fit RMS log error "
               + ", ".join(f"{k} {v:.3f}" for k, v in fit.items()))


@predictor_app.command("eval")
def evaluate(
    luts: LutsOpt,
    out: Annotated[Path, typer.Option(help="JSON report to write.")],
    extra: ExtraArg = None,
    lodo: Annotated[bool, typer.Option(help="Leave-one-device-out over every device.")] = True,
    n_archs: Annotated[int, typer.Option(help="Ground-truth architectures per device.")] = 5000,
    rank: RankOpt = 5,
    seed: SeedOpt = 0,
    allow_unknown: UnknownOpt = False,
    quiet: Annotated[bool, typer.Option()] = False,
) -> None:
    """Leave-one-device-out: zero-shot, few-shot and the scaled-nearest baseline per device."""
    from linas._io import write_json_atomic
    from linas.latency.measure import num_threads
    from linas.latency.predictor_eval import format_table
    from linas.latency.predictor_eval import lodo as run_lodo
    from linas.latency.predictor_train import load_devices

    if not lodo:
        raise ConfigError("--no-lodo: only leave-one-device-out evaluation exists; pass --lodo")
    devices = load_devices([*luts, *(extra or [])], allow_unknown)
    if len(devices) < 3 or n_archs < 10:
        raise ConfigError(f"--lodo needs >= 3 devices (got {len(devices)}) and --n-archs >= 10")
    progress = None if quiet else (lambda name: typer.echo(f"held out: {name}", err=True))
    with num_threads(1):
        result = run_lodo(devices, _config(rank, seed), n_archs, seed, progress)
    result["sources"] = {d.name: d.source for d in devices}
    write_json_atomic(out, result)
    typer.echo(format_table(result))
    typer.echo(f"wrote {out}")


@predictor_app.command("onboard")
def onboard(
    predictor: Annotated[Path, typer.Option(help="A trained predictor file.")],
    print_archs: Annotated[bool, typer.Option(
        help="Print the 10 reference architectures and the command to measure them.")] = False,
    fingerprint: Annotated[Path | None, typer.Option(
        help="Fingerprint file of the new device (from `linas lut fingerprint`).")] = None,
    out: Annotated[Path | None, typer.Option(help="Predicted LUT to write.")] = None,
    name: Annotated[str | None, typer.Option(help="Device name for the LUT.")] = None,
) -> None:
    """Onboard a new device from its 10-architecture fingerprint: a predicted LUT."""
    from linas.latency.fingerprint import REFERENCE_ARCHS
    from linas.latency.lut import save_lut
    from linas.latency.measure import num_threads
    from linas.latency.onboard import load_fingerprint
    from linas.latency.onboard import onboard as run_onboard
    from linas.latency.predictor import LatencyPredictor

    fp = None if fingerprint is None else load_fingerprint(fingerprint)  # cheap checks first
    model = LatencyPredictor.load(predictor)
    if print_archs:
        typer.echo("reference architectures (decoder only, in this order):")
        for i, arch in enumerate(REFERENCE_ARCHS):
            typer.echo(f"  {i}: {arch}")
        typer.echo("measure them on the new device (with linas installed there):\n"
                   "  linas lut fingerprint --out fp.json --size 128x128 [--threads N] "
                   "[--runtime torch|onnxruntime|openvino] [--name MYDEVICE]\n"
                   f"then: linas predictor onboard --predictor {predictor} --fingerprint fp.json "
                   "--out predicted_lut.json")
    if fp is None:
        if not print_archs:
            raise ConfigError("pass --fingerprint FILE --out FILE (or --print-archs)")
        return
    if out is None:
        raise ConfigError("--fingerprint needs --out FILE for the predicted LUT")
    with num_threads(1):
        result = run_onboard(model, fp, name)
    save_lut(result.lut, out)
    if result.warning:
        typer.echo(f"warning: {result.warning}", err=True)
    typer.echo(f"wrote {out}: predicted LUT of '{result.lut.hardware}' (fingerprint fit RMS log "
               f"error {result.fit_rms_log_error:.3f}; closest training device "
               f"'{result.closest_device}', distance {result.distance:.2f})")


def _config(rank: int, seed: int) -> PredictorConfig:
    from linas.latency.predictor import PredictorConfig

    if rank < 1:
        raise ConfigError(f"--rank {rank}: must be >= 1")
    return replace(PredictorConfig(), rank=rank, seed=seed)

