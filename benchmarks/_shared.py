"""Shared by the benchmarks (not part of the package): preparing a run whose reference LUTs
were measured at another input size than the benchmark runs at."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from linas.config import RunConfig
from linas.latency import load_lut
from linas.progress import Reporter
from linas.run import Context, Run, open_run, prepare


def prepare_run(cfg: RunConfig, out: Path, rep: Reporter,
                restart: bool = False) -> tuple[Run, Context]:
    """``linas.run.prepare`` (data, encoder features, the LUTs at the run size) with the
    LUT files of another input size read as they are, in config order.

    The run layer refuses such a LUT (latency does not scale across input sizes); the
    reference LUTs are 128x128 while these benchmarks run smaller, and they have always used
    their 128x128 latencies as stand-in devices, so they are kept (neither copied into the run
    nor checked by ``linas lut check``). A benchmark's choice, never the product's."""
    run = Run.start(cfg, open_run(out, cfg, restart), rep)
    other = {d.name: load_lut(str(d.lut)) for d in cfg.devices if d.lut is not None}
    other = {k: v for k, v in other.items() if tuple(v.input_size) != run.size}
    run.cfg = replace(cfg, devices=tuple(d for d in cfg.devices if d.name not in other))
    try:
        ctx = prepare(run)
    finally:
        run.cfg = cfg
    luts = {**ctx.luts, **other}
    ctx.luts = {d.name: luts[d.name] for d in cfg.devices}
    return run, ctx
