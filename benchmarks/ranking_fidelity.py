"""Supernet ranking fidelity (I2): Kendall tau / Spearman rho of weight-sharing vs stand-alone.

A fixed, seeded subset of architectures, stratified over a reference device's LUT latency (one
per equal-count latency stratum of a seeded pool, as DyNAS stratifies over accuracy bins), is

* trained stand-alone, each under one recipe (``linas.distill.train_final`` on frozen, cached
  encoder features; mIoU on the arch-val split), cached on disk keyed by arch, recipe and data;
* evaluated by weight sharing (``linas.search.evaluate_choices``, same split) in supernets
  trained by ``BilevelSearch`` with each variant below, with the same number of weight steps,
  the same data and, per seed, the same initial weights.

Usage::

    python benchmarks/ranking_fidelity.py --out runs/ranking_fidelity.json

writes the JSON and a Markdown table (``--out`` with ``.md``) and prints the table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from linas.data import (
    FeatureSet,
    cache_features,
    generate_sealer_dataset,
    load_dataset,
    load_tensors,
    split_indices,
)
from linas.distill import FinalTrainConfig, evaluate_model, train_final
from linas.latency import LUT, LUTLatencyModel, load_lut
from linas.search import (
    BilevelSearch,
    DeviceTarget,
    SearchConfig,
    complexity_table,
    evaluate_choices,
)
from linas.space import Arch, SearchSpace
from linas.supernet import Supernet, load_encoder

REFERENCE_LUT = Path(__file__).resolve().parents[1].parent / "shared" / "reference-luts" / \
    "raspberrypi5.json"
_SP = {"train_mode": "single-path"}
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "single-path": _SP,
    "calr-seed": {**_SP, "calr": "seed"},
    "calr-dynas": {**_SP, "calr": "dynas"},
    "momentum-seed": {**_SP, "momentum": "seed"},
    "momentum-dynas": {**_SP, "momentum": "dynas"},
    "both-seed": {**_SP, "calr": "seed", "momentum": "seed"},
    "both-dynas": {**_SP, "calr": "dynas", "momentum": "dynas"},
}


@dataclass(frozen=True)
class Settings:
    """Everything a result depends on (recorded in the JSON; part of every cache key)."""

    n_archs: int = 20
    seeds: tuple[int, ...] = (0, 1, 2)
    n_images: int = 80  # 48 train / 16 arch-val (evaluation) / 16 test (unused)
    size: int = 64
    data_seed: int = 0
    encoder_weights: str = "auto"
    sa_epochs: int = 4  # stand-alone: 24 steps of batch 8
    sa_lr: float = 1e-3
    batch_size: int = 8
    warmup_epochs: int = 2  # supernets: 5 epochs x 6 = 30 weight steps (+ 18 arch steps)
    search_epochs: int = 3
    soft_epochs: int = 1
    arch_seed: int = 0
    pool: int = 4000


@dataclass
class Bench:
    """Data, supernet and the fixed architecture subset shared by every measurement."""

    settings: Settings
    train: FeatureSet
    val: FeatureSet
    num_classes: int
    encoder_source: str
    net: Supernet
    device: DeviceTarget
    archs: list[Arch]
    latency_ms: np.ndarray


def _key(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def cached(path: Path, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Read ``path`` if it exists, else compute, write (atomically) and return."""
    if path.is_file():
        return json.loads(path.read_text())
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value))
    tmp.replace(path)
    return value


def reinit(net: Supernet, seed: int) -> None:
    """Re-initialise the decoder in place, deterministically (the encoder stays)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for part in (net.layers, net.head):
            for m in part.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()


def reference_device(lut_path: Path) -> tuple[DeviceTarget, str]:
    """The device whose latency stratifies the subset and drives the search's penalty; a
    FLOPs proxy (1 ms per GMAC at 64x64) when the reference LUT is absent."""
    if lut_path.is_file():
        lut = load_lut(lut_path)
        source = str(lut_path.name)
    else:
        flops = complexity_table((64, 64)).flops / 1e9
        lut = LUT(hardware="flops_proxy", input_size=(64, 64), mean_ms=flops,
                  std_ms=flops * 0.0)
        source = "flops_proxy"
    return DeviceTarget(lut.hardware, LUTLatencyModel(lut), 0.0), source


def pick_archs(model: LUTLatencyModel, n: int, pool: int, seed: int) -> tuple[list[Arch],
                                                                             np.ndarray]:
    """One architecture per equal-count latency stratum of a seeded pool, fastest first."""
    rng = np.random.default_rng(seed)
    choices = np.array([a.choices for a in SearchSpace().sample_unique(pool, seed)])
    lat = model.predict(choices)
    strata = np.array_split(np.argsort(lat, kind="stable"), n)
    picked = np.array([rng.choice(s) for s in strata])
    return [Arch(tuple(int(c) for c in choices[i])) for i in picked], lat[picked]


def build_bench(s: Settings, cache: Path, lut_path: Path) -> Bench:
    """Synthesise (or reuse) the data, cache encoder features, build the supernet, pick archs."""
    root = cache / f"data_n{s.n_images}_s{s.size}_seed{s.data_seed}"
    if not (root / "dataset.json").is_file():
        generate_sealer_dataset(root, s.n_images, (s.size, s.size), s.data_seed,
                                overwrite=True)
    ds = load_dataset("folder", root, size=(s.size, s.size))
    idx = split_indices(len(ds), seed=s.data_seed)
    with torch.random.fork_rng():
        torch.manual_seed(s.data_seed)  # a random encoder is the same in every run
        encoder, source = load_encoder(s.encoder_weights)
        net = Supernet(ds.num_classes, encoder)
    net.freeze_encoder()
    feats = {k: cache_features(net.encoder, *load_tensors(ds, idx[k]))
             for k in ("train", "arch_val")}
    device, lut_source = reference_device(lut_path)
    archs, lat = pick_archs(device.model, s.n_archs, s.pool, s.arch_seed)
    device.target_ms = float(np.median(device.model.predict(
        np.array([a.choices for a in SearchSpace().sample(s.pool, s.arch_seed + 1)]))))
    device.name = f"{device.name} ({lut_source})"
    return Bench(s, feats["train"], feats["arch_val"], ds.num_classes, source, net, device,
                 archs, lat)


def data_key(b: Bench) -> dict[str, Any]:
    s = b.settings
    return {"n_images": s.n_images, "size": s.size, "data_seed": s.data_seed,
            "encoder": b.encoder_source}


def standalone(b: Bench, arch: Arch, cache: Path) -> float:
    """Stand-alone mIoU of ``arch`` (cached): fresh decoder (seed-0 init), ``train_final``."""
    s = b.settings
    recipe = FinalTrainConfig(epochs=s.sa_epochs, batch_size=s.batch_size, lr=s.sa_lr, seed=0)
    key = _key({"arch": str(arch), "recipe": asdict(recipe), "init": 0, **data_key(b)})

    def compute() -> dict[str, Any]:
        reinit(b.net, 0)
        model = b.net.extract(arch)
        train_final(model, b.train, recipe)
        return {"arch": str(arch), "miou": evaluate_model(model, b.val, b.num_classes)["miou"]}

    return float(cached(cache / "standalone" / f"{key}.json", compute)["miou"])


def supernet_run(b: Bench, name: str, seed: int, cache: Path) -> dict[str, Any]:
    """Train a supernet with variant ``name`` from the seed's init; WS mIoU of every arch."""
    s = b.settings
    cfg = SearchConfig(warmup_epochs=s.warmup_epochs, search_epochs=s.search_epochs,
                       soft_epochs=s.soft_epochs, batch_size=s.batch_size, seed=seed,
                       **VARIANTS[name])
    key = _key({"search": asdict(cfg), "archs": [str(a) for a in b.archs],
                "device": [b.device.name, b.device.target_ms], **data_key(b)})

    def compute() -> dict[str, Any]:
        start = time.perf_counter()
        reinit(b.net, 1000 + seed)
        search = BilevelSearch(b.net, [b.device], cfg)
        search.run(b.train, b.val)
        weight_steps = search.steps_per_epoch(b.train) * search.total_epochs
        del search  # frees the optimizer states before evaluation
        miou = [evaluate_choices(b.net, b.val, list(a.choices), b.num_classes)[0]
                for a in b.archs]
        return {"ws_miou": miou, "weight_steps": weight_steps,
                "wall_s": round(time.perf_counter() - start, 1)}

    return cached(cache / "supernet" / f"{name}_seed{seed}_{key}.json", compute)


def correlations(ws: list[float], sa: list[float]) -> tuple[float, float]:
    tau = kendalltau(ws, sa).statistic
    rho = spearmanr(ws, sa).statistic
    return float(tau), float(rho)


def markdown(result: dict[str, Any]) -> str:
    """The tau / rho table: mean +- std over seeds, and each seed's tau."""
    lines = ["| variant | Kendall tau (mean +- std) | Spearman rho (mean +- std) | tau per seed "
             "| wall s per supernet |", "|---|---|---|---|---|"]
    for name, v in result["variants"].items():
        t, r = np.array(v["kendall_tau"]), np.array(v["spearman"])
        lines.append(f"| {name} | {t.mean():.3f} +- {t.std():.3f} | {r.mean():.3f} +- "
                     f"{r.std():.3f} | {', '.join(f'{x:.3f}' for x in t)} | "
                     f"{np.mean(v['wall_s']):.0f} |")
    return "\n".join(lines) + "\n"


def run(s: Settings, names: list[str], cache: Path, lut_path: Path,
        log: Callable[[str], None]) -> dict[str, Any]:
    """The whole harness; returns the JSON-ready result."""
    start = time.perf_counter()
    b = build_bench(s, cache, lut_path)
    log(f"{len(b.archs)} archs, latency {b.latency_ms.min():.1f}-{b.latency_ms.max():.1f} ms "
        f"on {b.device.name}; encoder {b.encoder_source}")
    sa = []
    for i, arch in enumerate(b.archs):
        sa.append(standalone(b, arch, cache))
        log(f"stand-alone {i + 1}/{len(b.archs)} {arch}: mIoU {sa[-1]:.4f}")
    variants: dict[str, Any] = {}
    for name in names:
        rows = [supernet_run(b, name, seed, cache) for seed in s.seeds]
        corr = [correlations(r["ws_miou"], sa) for r in rows]
        variants[name] = {"kendall_tau": [c[0] for c in corr], "spearman": [c[1] for c in corr],
                          "ws_miou": [r["ws_miou"] for r in rows],
                          "weight_steps": [r["weight_steps"] for r in rows],
                          "wall_s": [r["wall_s"] for r in rows], "config": VARIANTS[name]}
        log(f"{name}: tau {[round(c[0], 3) for c in corr]}")
    return {"variants": variants, "n_archs": len(b.archs), **asdict(s),
            "archs": [str(a) for a in b.archs], "latency_ms": b.latency_ms.tolist(),
            "stratified_by": b.device.name, "standalone_miou": sa,
            "encoder_weights_loaded": b.encoder_source, "num_classes": b.num_classes,
            "train_images": len(b.train), "eval_images": len(b.val),
            "threads": torch.get_num_threads(),
            "wall_time_s": round(time.perf_counter() - start, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="JSON file to write (+ .md)")
    p.add_argument("--cache", type=Path, default=Path(".cache/ranking_fidelity"))
    p.add_argument("--lut", type=Path, default=REFERENCE_LUT, help="reference device LUT")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", type=int, nargs="+", default=list(Settings.seeds))
    p.add_argument("--threads", type=int, default=2)
    for f in ("n_archs", "n_images", "size", "sa_epochs", "warmup_epochs", "search_epochs",
              "soft_epochs", "batch_size"):
        p.add_argument(f"--{f.replace('_', '-')}", type=int, default=getattr(Settings, f))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    s = replace(Settings(), seeds=tuple(a.seeds), **{f: getattr(a, f) for f in (
        "n_archs", "n_images", "size", "sa_epochs", "warmup_epochs", "search_epochs",
        "soft_epochs", "batch_size")})
    result = run(s, a.variants, a.cache, a.lut, lambda m: print(m, flush=True))
    table = markdown(result)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    a.out.with_suffix(".md").write_text(
        f"# Ranking fidelity ({result['n_archs']} archs, seeds {list(s.seeds)}, "
        f"{result['wall_time_s']:.0f} s)\n\n" + table)
    print(table + f"wall time {result['wall_time_s']:.0f} s; wrote {a.out}")


if __name__ == "__main__":
    main()
