"""``linas ablation``: the seed's ablation table (SPEC section 7) in one command.

Six rows, each switching one improvement on over the row before, on identical data, budgets
and seeds. Every (row, seed) is a normal run directory ``OUT/<row>/seed<k>/`` (traceable,
resumable); rerunning the command continues where it stopped. Work the rows share is done
once: per seed, the data, the encoder feature cache and the stand-alone ground truth live in
``OUT/shared/seed<k>/`` (a run directory prepared under the baseline row's config), and are
linked into every row directory before it runs; the LUTs measured on this machine are
measured once, for the first seed, and validated end to end once; rows whose search settings
are equal (``+I2+I1`` and ``+I2+I1+I3``) share one search (its checkpoint is copied).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from linas._errors import ConfigError
from linas._io import write_json_atomic
from linas.config import RunConfig, with_overrides
from linas.progress import Reporter
from linas.run.rundir import run_lock


@dataclass(frozen=True)
class Row:
    """One row of the table: its id (directory name), its name, what it switches on over the
    row before (the table header says it), and the config keys that do it."""

    id: str
    name: str
    adds: str
    overrides: dict[str, Any]


_BASE: dict[str, Any] = {"search.strategy": "bilevel", "search.train_mode": "soft",
                         "search.calr": "none", "search.momentum": "shared",
                         "pareto.strategy": "baseline", "devices.*.use_interactions": False,
                         "final.kd": "none"}
_I2 = {**_BASE, "search.train_mode": "single-path", "search.calr": "seed",
       "search.momentum": "seed"}
_I1 = {**_I2, "search.strategy": "hypernet"}
_I3 = {**_I1, "pareto.strategy": "zero-cost"}
_I4 = {**_I3, "devices.*.use_interactions": True}
ROWS: tuple[Row, ...] = (
    Row("baseline", "Baseline", "LINAS: bi-level search with soft (all-candidate) supernet "
        "training, sampled Pareto search, latency = fixed part + op sum, CE final training",
        _BASE),
    Row("i2", "+I2", "fair single-path training: CaLR (lr x (0.5 + 0.5 flops/max)) and one "
        "optimizer state per complexity bin", _I2),
    Row("i2-i1", "+I2+I1", "preference-conditioned hypernetwork over all devices", _I1),
    Row("i2-i1-i3", "+I2+I1+I3", "NEAR zero-cost guided Pareto sampling", _I3),
    Row("i2-i1-i3-i4", "+I2+I1+I3+I4", "interaction-aware latency (adjacent-pair terms)", _I4),
    Row("full", "Full", "latency-aware distillation (I5) in final training",
        {**_I4, "final.kd": "latency"}),
)
ROW_IDS = tuple(r.id for r in ROWS)


@dataclass(frozen=True)
class Profile:
    """Run-config overrides laid over the user's config, and the ablation's own budgets:
    stand-alone ground-truth architectures, the reference set for the hypervolume, and the
    architectures timed end to end for the MAPE column."""

    name: str
    overrides: dict[str, Any]
    truth_archs: int
    reference_archs: int
    validate_archs: int
    description: str


PROFILES: dict[str, Profile] = {
    "small": Profile("small", {
        "data.n_images": 96,
        "search.warmup_epochs": 2, "search.search_epochs": 3, "search.soft_epochs": 1,
        "search.batch_size": 8,
        "pareto.n_candidates": 300, "pareto.n_evaluate": 24, "pareto.n_sample": 1000,
        "pareto.n_prefilter": 100, "hypernet.sweep_points": 11,
        "final.epochs": 6, "final.batch_size": 8,
        "devices.*.measure.warmup": 2, "devices.*.measure.repeat": 7,
        "devices.*.measure.fit_archs": 24, "devices.*.measure.e2e_warmup": 3,
        "devices.*.measure.e2e_repeat": 10,
    }, truth_archs=8, reference_archs=150, validate_archs=20, description=(
        "2-core CPU scale: 96 synthetic images, 2 warm-up + 3 search epochs (1 soft), Pareto "
        "24 evaluations of 300 candidates (zero-cost: 1,000 scored, 100 kept), final training "
        "6 epochs, 8 stand-alone architectures, 150 reference architectures, 20 timed end to "
        "end; the data size and the devices are the config's")),
    "paper": Profile("paper", {}, truth_archs=24, reference_archs=1000, validate_archs=100,
                     description=(
        "the config as given (full data, the default 6 + 8 search epochs, 1,000 candidates / "
        "100 evaluations, 15 final epochs), 24 stand-alone architectures, 1,000 reference "
        "architectures, 100 timed end to end: the setting for a GPU server")),
}


def profile(name: str, truth_archs: int | None = None, reference_archs: int | None = None,
            validate_archs: int | None = None) -> Profile:
    """The profile called ``name``, its architecture counts replaced where given.

    Raises:
        ConfigError: an unknown name (listing the profiles), or a count out of range.
    """
    if name not in PROFILES:
        raise ConfigError(f"--profile '{name}': unknown; choose one of {', '.join(PROFILES)}")
    counts = {"truth_archs": truth_archs, "reference_archs": reference_archs,
              "validate_archs": validate_archs}
    for key, value in counts.items():
        if value is not None and value < (3 if key == "truth_archs" else 1):
            raise ConfigError(f"--{key.replace('_', '-')} {value}: needs at least "
                              f"{3 if key == 'truth_archs' else 1}")
    base = PROFILES[name]
    return replace(base, truth_archs=truth_archs or base.truth_archs,
                   reference_archs=reference_archs or base.reference_archs,
                   validate_archs=validate_archs or base.validate_archs)


def parse_rows(text: str | None) -> list[Row]:
    """Rows named in ``text`` (comma-separated ids; None: all six), in table order.

    Raises:
        ConfigError: an unknown row id, listing the valid ones.
    """
    if not text:
        return list(ROWS)
    wanted = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in wanted if t not in ROW_IDS]
    if bad or not wanted:
        raise ConfigError(f"--rows '{text}': unknown row {bad[0] if bad else '(none)'}; rows: "
                          f"{', '.join(ROW_IDS)}")
    return [r for r in ROWS if r.id in wanted]


def parse_seeds(text: str) -> list[int]:
    """``0,1,2`` -> [0, 1, 2] (distinct, non-negative).

    Raises:
        ConfigError: not a comma-separated list of distinct non-negative integers.
    """
    try:
        seeds = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds '{text}': expected distinct non-negative integers, e.g. "
                          "--seeds 0,1,2")
    return seeds


def row_config(cfg: RunConfig, row: Row, seed: int) -> RunConfig:
    """The run config of ``row`` at ``seed``: the user's config with the row's switches."""
    return with_overrides(replace(cfg, seed=seed), row.overrides, f"ablation row {row.id}")


def search_key(cfg: RunConfig) -> dict[str, Any]:
    """What a search depends on: everything but the Pareto and final sections."""
    return {k: v for k, v in cfg.to_dict().items() if k not in ("pareto", "final")}


def run_ablation(cfg: RunConfig, seeds: Sequence[int], out: Path, rows: Sequence[Row],
                 prof: Profile, reporter: Reporter | None = None) -> dict[str, Any]:
    """Run (or resume) every row at every seed, then write ``ablation.json``, ``ablation.md``
    and the plots into ``out``; returns the table as plain data."""
    from linas.run.ablation_measures import Plan, measure_row, prepare_seed
    from linas.run.ablation_table import build_table, write_outputs

    rep = reporter or Reporter()
    out = Path(out)
    cfg = with_overrides(cfg, prof.overrides, f"ablation profile {prof.name}")
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out, rep.warn):
        plan = Plan.build(cfg, seeds, prof, out)
        write_json_atomic(out / "ablation_plan.json", plan.describe(rows))
        total, done = len(rows) * len(seeds), 0
        records: dict[str, dict[int, dict[str, Any]]] = {r.id: {} for r in rows}
        for seed in seeds:
            shared = prepare_seed(plan, seed, rep)
            searched: dict[str, str] = {}  # search key -> the row that ran it
            for row in rows:
                done += 1
                rep.info(f"[bold]ablation[/bold] {row.name}, seed {seed} ({done}/{total})")
                rcfg = row_config(cfg, row, seed)
                key = repr(sorted(search_key(rcfg).items()))
                row_dir = out / row.id / f"seed{seed}"
                source = searched.get(key)
                seed_row_dir(row_dir, shared.dir, out / source / f"seed{seed}"
                             if source else None)
                records[row.id][seed] = measure_row(plan, row, rcfg, row_dir, shared, source,
                                                    rep)
                searched.setdefault(key, source or row.id)
        table = build_table(plan, rows, records)
        write_outputs(out, table, plan, rows, records)
    return table


def seed_row_dir(row_dir: Path, shared: Path, search_from: Path | None) -> None:
    """Give a new row directory the seed's shared data, feature cache and LUTs (hard links,
    copies where links fail) and, when another row ran the same search, its checkpoint."""
    if (row_dir / "config.yaml").is_file():
        return  # an existing run: it has (or will recompute) what it needs
    for name in ("data", "cache", "luts"):
        if (shared / name).is_dir():
            link_tree(shared / name, row_dir / name)
    if search_from is not None and (search_from / "checkpoints" / "search.pt").is_file():
        for src in (search_from / "checkpoints").iterdir():
            if src.is_file():
                (row_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
                link_file(src, row_dir / "checkpoints" / src.name)


def link_tree(src: Path, dst: Path) -> None:
    """Mirror ``src`` into ``dst`` with hard links (files are only ever replaced atomically,
    never written in place, so a link is safe); copies across file systems."""
    for path in sorted(src.rglob("*")):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        link_file(path, target)


def link_file(src: Path, dst: Path) -> None:
    """Hard-link ``src`` as ``dst`` (safe: files are only ever replaced atomically, never
    written in place); a copy across file systems."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None, int]:
    """Mean and (population) standard deviation of the values that exist, and their count."""
    have = [float(v) for v in values if v is not None and np.isfinite(v)]
    if not have:
        return None, None, 0
    return float(np.mean(have)), float(np.std(have)), len(have)
