"""LUT measurement as a command: build the candidates and time them on this machine."""

from __future__ import annotations

from pathlib import Path

import torch

from linas._errors import ConfigError
from linas.latency import LUT, save_lut
from linas.latency.measure import measure_lut
from linas.progress import Reporter
from linas.space import NUM_CHOICES, SearchSpace
from linas.supernet import FixedPart, Supernet

RUNTIMES = ("torch",)


def measure_command(out: Path, size: tuple[int, int], runtime: str, device: str,
                    threads: int | None, warmup: int, repeat: int, name: str | None,
                    quiet: bool) -> Path:
    """Measure a v2 LUT with its fixed part and write it to ``out``."""
    if runtime not in RUNTIMES:
        raise ConfigError(f"--runtime '{runtime}': supported here: {', '.join(RUNTIMES)}")
    if device != "cpu" and not (device == "cuda" and torch.cuda.is_available()):
        raise ConfigError(f"--device '{device}': not available on this machine; use cpu")
    if warmup < 0 or repeat < 3:
        raise ConfigError("--warmup must be >= 0 and --repeat >= 3 (IQR filtering needs samples)")
    rep = Reporter(quiet)
    net = Supernet(num_classes=3).to(device).eval()
    lut = measure_supernet_lut(net, size, warmup, repeat, threads,
                               name or f"local_{runtime}_{device}", rep)
    save_lut(lut, out)
    rep.info(f"wrote {out}")
    return out


def measure_supernet_lut(net: Supernet, size: tuple[int, int], warmup: int, repeat: int,
                         threads: int | None, hardware: str, rep: Reporter) -> LUT:
    """Time the 105 candidates of ``net`` and its fixed part at input ``size``."""
    h, w = size
    dev = next(net.parameters()).device
    # layer i sees the previous output: C_in at half its own output size
    inputs = [torch.randn(1, s.c_in, h // (2 * s.out_stride), w // (2 * s.out_stride), device=dev)
              for s in SearchSpace().layers]
    with rep.task(f"measuring LUT ({hardware})", len(inputs) * NUM_CHOICES + 1) as adv:
        return measure_lut(lambda layer, c: (net.candidate(layer, c), inputs[layer]), hardware,
                           size, warmup, repeat, threads,
                           fixed=lambda: (FixedPart(net), torch.randn(1, 3, h, w, device=dev)),
                           progress=lambda done, total: adv(1))
