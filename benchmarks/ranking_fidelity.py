"""Ranking fidelity: does any ranking signal order architectures as training them does?

The ground truth: a fixed, seeded list of architectures (one per equal-count latency stratum
of a seeded pool on a reference device's LUT, fastest first), each trained stand-alone with
the product's final-training recipe (``linas.run.ablation_measures.standalone_miou``: the
demo's 15 epochs of batch 16, CE only) at the demo's size and data, on two training seeds.
The seed-vs-seed Kendall tau is the noise ceiling.

The signals, each against the mean of the two stand-alone mIoUs (Kendall tau, Spearman rho,
seeded bootstrap 95% interval over architectures): weight-sharing arch-val mIoU of supernets
trained by the product's search stage under several settings (the demo's; I2 seed and dynas;
a doubled budget; the sandwich rule with in-place distillation; the hypernetwork strategy),
each evaluated with the supernet's BatchNorm statistics and with per-path BN recalibration;
every registered zero-cost proxy on a seeded decoder; the hypernetwork's preference ordering
(log-probability of each architecture at the accuracy-only preference).

Two encoder conditions: ``random`` (the frozen random DenseNet121, today's offline default)
and ``adapted`` (the same encoder fine-tuned end-to-end with a fixed small decoder on the
training split, then frozen and passed as ``encoder.weights: PATH``: the offline stand-in for
ImageNet weights; a user with real weights sets ``--weights``).

Everything runs through the product (``linas.run.stages.session``, the search stage, the
final-training recipe) in run directories under ``--cache``; every item is cached there, so a
rerun is cheap and a killed run loses one item. Usage::

    python benchmarks/ranking_fidelity.py --out benchmarks/results/ranking_fidelity.json

writes the JSON, a Markdown table (``.md``) and the scatter plots (``.png``).
``--part truth`` / ``--part signals`` run one half (two such processes can share the 2
cores: every session is pinned to one thread, ``compute.threads: 1``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from linas._io import write_json_atomic
from linas.config import RunConfig, load_config, stage_seeds
from linas.latency import LUTLatencyModel, load_lut
from linas.metrics_rank import bootstrap_ci, kendall_tau, spearman_rho
from linas.progress import Reporter
from linas.run.ablation_measures import standalone_miou, stratified_choices
from linas.run.final import digest
from linas.space import NUM_LAYERS, OPS, Arch, SearchSpace, parse_choice
from linas.supernet.ops import build_op

REFERENCE_LUT = Path(__file__).resolve().parents[1].parent / "shared" / "reference-luts" / \
    "raspberrypi5.json"
CONDITIONS = ("random", "adapted")
_I2_SEED = {"search.train_mode": "single-path", "search.calr": "seed", "search.momentum": "seed"}
# supernet training settings (run-config keys over the demo's); "demo" is the demo itself
TRAININGS: dict[str, dict[str, Any]] = {
    "demo": {},
    "i2-seed": _I2_SEED,
    "i2-dynas": {"search.train_mode": "single-path", "search.calr": "dynas",
                 "search.momentum": "dynas"},
    "longer": {"search.warmup_epochs": 12, "search.search_epochs": 16},
    "sandwich": {"search.train_mode": "sandwich"},
    "hypernet": {**_I2_SEED, "search.strategy": "hypernet"},
}
PROXY_NAMES = ("near", "params", "flops", "grad_norm")
# what a stand-alone result and a supernet's signals depend on (keys of the shared cache)
TRUTH_SECTIONS = ("seed", "data", "encoder", "final", "compute")
SIGNAL_SECTIONS = ("seed", "data", "encoder", "devices", "search", "hypernet", "compute")
N_REPLICATES = 2  # stand-alone trainings per architecture
ADAPT_ARCH = "Conv3x3_w50-Conv3x3_w50-Conv3x3_w50-Conv3x3_w50-Conv3x3_w50"
ADAPT_EPOCHS = 3


def base_profile(lut: Path, weights: str) -> dict[str, Any]:
    """Run-config keys every session of a condition shares: the demo's data and recipes, the
    reference device from its LUT (budget: the median latency of a seeded sample), one thread.
    """
    model = LUTLatencyModel(load_lut(lut))
    sample = np.array([a.choices for a in SearchSpace().sample(2000, 1)])
    budget = round(float(np.median(model.predict(sample))), 3)
    return {"seed": 0, "encoder.weights": weights, "compute.threads": 1,
            "devices": [{"name": "reference", "lut": str(lut), "budget_ms": budget}]}


def config(profile: dict[str, Any], extra: dict[str, Any]) -> RunConfig:
    return load_config(None, profile={**profile, **extra})


def session_of(root: Path, cfg: RunConfig) -> Any:
    from linas.run.stages import session

    return session(root, cfg, Reporter(quiet=True))


def truth_archs(cfg: RunConfig, n: int) -> list[Arch]:
    """One architecture per equal-count latency stratum (the reference device's latency
    model, as the run builds it) of a pool drawn by the run's Pareto seed, fastest first:
    a function of the config alone, so every session of a condition gets the same list."""
    dev = cfg.devices[0]
    model = LUTLatencyModel(load_lut(Path(str(dev.lut))), use_interactions=dev.use_interactions)
    rows = stratified_choices(model, n, stage_seeds(cfg.seed)["pareto"])
    return [Arch(tuple(int(c) for c in row)) for row in rows]


def replicate_seeds(run: Any) -> list[int]:
    """The training seeds of the replicates: the run's final seed, then derived ones."""
    base = run.seeds["final"]
    extra = np.random.SeedSequence([base, 0x5EED]).generate_state(N_REPLICATES - 1)
    return [base, *(int(s) for s in extra)]


def adapted_encoder(cache: Path, lut: Path, log: Callable[[str], None]) -> tuple[Path, str]:
    """The task-adapted encoder: the random DenseNet121 fine-tuned end-to-end (with the fixed
    decoder ``ADAPT_ARCH``) for ``ADAPT_EPOCHS`` epochs of the final recipe on the training
    split, saved as a state_dict (cached), and its identity: the recipe's digest.

    Results are keyed by the recipe, not by the file's bytes: another CPU's floating point
    trains a file that differs in its last bits (as it does every stand-alone training, whose
    results the cache already shares between CPUs), and keying by bytes would throw away
    every result on a new machine. Cross-machine differences are measured in
    ``benchmarks/README.md``."""
    from linas.distill import train_final
    from linas.run.final import own_splits
    from linas.supernet import save_encoder

    cfg = config(base_profile(lut, "random"), {"encoder.finetune": True,
                                               "final.epochs": ADAPT_EPOCHS})
    ident = digest({"arch": ADAPT_ARCH, "epochs": ADAPT_EPOCHS,
                    "config": result_key(cfg, TRUTH_SECTIONS)})
    path = cache / "adapted_encoder" / f"densenet121-{ADAPT_EPOCHS}ep-{ident}.safetensors"
    if path.is_file():
        return path, ident
    start = time.perf_counter()
    with session_of(cache / "adapted_encoder" / "run", cfg) as (run, ctx):
        model = ctx.net.extract(Arch.parse(ADAPT_ARCH))
        splits = own_splits(run, ctx, model)
        recipe = replace(run.cfg.final, seed=run.seeds["final"])
        train_final(model, splits["train"], recipe, run.results.get("ignore_index", 255),
                    compute=run.compute)
        save_encoder(model.encoder, path)
    log(f"adapted encoder: {ADAPT_EPOCHS} epochs in {time.perf_counter() - start:.0f} s")
    return path, ident


def truth(root: Path, cfg: RunConfig, archs: list[Arch], log: Callable[[str], None],
          warm: dict[str, Any], worker: int | None = None, train: bool = True,
          weights_id: str | None = None) -> dict[str, Any]:
    """Stand-alone mIoU of every architecture on every replicate seed, and the proxies, in
    :func:`work_order`: an interrupted run has the noise ceiling's pairs first, then one
    seed of as many architectures as it got to, spread over the latency range.

    ``worker`` K: one of several processes sharing the work, in its own run directory
    (``truth-wK``: a run directory is locked by one process); each claims items not yet
    done nor claimed, and results are shared between the directories (same config, same cache
    keys). None: the main process (``truth``), which computes whatever is still missing.
    ``warm``: results of an earlier run by portable key (:func:`portable`), used as computed.
    ``train`` False: report what is done, leave the rest NaN. ``weights_id``: see
    :func:`portable`.
    """
    from linas.pareto.proxies import get_proxy, proxy_context

    start = time.perf_counter()
    own = root if worker is None else root.with_name(f"{root.name}-w{worker}")
    key = result_key(cfg, TRUTH_SECTIONS, weights_id)
    items = root.parent / "standalone" / key  # one file per result, shared by all workers
    known = dict(warm.get(key, {}))
    with session_of(own, cfg) as (run, ctx):
        run.save()
        seeds = replicate_seeds(run)
        miou = np.full((len(seeds), len(archs)), np.nan)
        pending = True
        while pending:  # a worker rescans after each item: a dead worker's claim reopens
            pending = False
            for i, j in work_order(len(archs), len(seeds)):
                arch, seed = archs[j], seeds[i]
                name = f"{arch}@{seed}"
                known.update(read_items(items))  # what the other workers have finished
                if name in known:
                    miou[i, j] = known[name]
                    continue
                if not train or (worker is not None and not claim(items / "claims", name)):
                    continue
                t0 = time.perf_counter()
                miou[i, j] = standalone_miou(run, ctx, arch, seed)
                write_json_atomic(items / f"{name}.json", {"miou": miou[i, j]})
                log(f"  stand-alone {j + 1}/{len(archs)} seed {i}: {arch} mIoU "
                    f"{miou[i, j]:.4f} ({time.perf_counter() - t0:.0f} s)")
                pending = worker is not None
                if pending:
                    break
        choices = np.array([a.choices for a in archs])
        nc = run.results["num_classes"]
        pctx = proxy_context(ctx.splits["train"], nc, run.seeds["pareto"],
                             batch_size=max(1, run.cfg.pareto.proxy_batch))
        proxies = {name: get_proxy(name).score(choices, pctx).tolist() for name in PROXY_NAMES}
        latency = ctx.models["reference"].predict(choices).tolist()
    return {"archs": [str(a) for a in archs], "latency_ms": latency, "seeds": seeds,
            "miou": [[float(x) if np.isfinite(x) else None for x in r] for r in miou],
            "proxies": proxies, "wall_s": time.perf_counter() - start,
            "portable_key": key}


PAIRS_FIRST = 8  # architectures trained on every seed before the others get their first


def work_order(n_archs: int, n_seeds: int) -> list[tuple[int, int]]:
    """(seed index, arch index) items: the first ``PAIRS_FIRST`` architectures of
    :func:`spread_order` on every seed, then the rest seed by seed."""
    order = spread_order(n_archs)
    head, rest = order[:PAIRS_FIRST], order[PAIRS_FIRST:]
    return ([(i, j) for j in head for i in range(n_seeds)]
            + [(i, j) for i in range(n_seeds) for j in rest])


def spread_order(n: int) -> list[int]:
    """0..n-1 in van der Corput order: every prefix spreads over the range (0, n/2, n/4,
    3n/4, ...)."""
    out: list[int] = []
    m = 0
    while len(out) < n and m < 64 * n:
        x, f, k = 0.0, 0.5, m
        while k:
            x, k, f = x + f * (k & 1), k >> 1, f / 2
        j = int(x * n)
        if j not in out:
            out.append(j)
        m += 1
    return out + [j for j in range(n) if j not in out]


def read_items(folder: Path) -> dict[str, float]:
    """The stand-alone results written so far (``ARCH@SEED.json`` files)."""
    return {p.stem: float(json.loads(p.read_text())["miou"]) for p in folder.glob("*@*.json")}


def claim(folder: Path, item: str) -> bool:
    """True when this process may train ``item``: it created the claim (an exclusive file
    create holding its pid), or the claim's process is gone (killed: the claim reopens)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / item
    try:
        with path.open("x") as f:
            f.write(str(os.getpid()))
        return True
    except FileExistsError:
        pass
    text = path.read_text().strip()
    if text.isdigit() and _alive(int(text)):
        return False
    path.write_text(str(os.getpid()))
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def signals(root: Path, cfg: RunConfig, archs: list[str], log: Callable[[str], None],
            warm: dict[str, Any], train: bool = True, weights_id: str | None = None
            ) -> dict[str, Any] | None:
    """Train (or resume, or load) the supernet of ``cfg``'s search stage; weight-sharing
    arch-val mIoU of ``archs`` without and with BN recalibration (cached in ``root``).
    ``train`` False: the cached result or None."""
    from linas.run.search import hypernet_devices, run_search
    from linas.search import evaluate_choices

    path = root / "ranking_signals.json"
    key = digest({"archs": archs, "config": result_key(cfg, SIGNAL_SECTIONS, weights_id)})
    if key in warm:
        return dict(warm[key])
    if path.is_file() and json.loads(path.read_text()).get("key") == key:
        return dict(json.loads(path.read_text()))
    if not train:
        return None
    start = time.perf_counter()
    with session_of(root, cfg) as (run, ctx):
        run.save()
        state = run_search(run, ctx)
        search_s = time.perf_counter() - start
        nc, ignore = run.results["num_classes"], run.results.get("ignore_index", 255)
        val, train = ctx.splits["arch_val"], ctx.splits["train"]
        out: dict[str, Any] = {"key": key, "search_s": search_s}
        for name, recal in (("ws", None), ("ws+bn", train)):
            t0 = time.perf_counter()
            out[name] = [float(evaluate_choices(ctx.net, val, list(Arch.parse(a).choices), nc,
                                                ignore, compute=run.compute,
                                                bn_recal=recal)[0]) for a in archs]
            out[f"{name}_eval_s"] = time.perf_counter() - t0
        if run.cfg.search.strategy == "hypernet":
            out["hypernet-pref"] = hypernet_logprob(state, hypernet_devices(run, ctx)[0],
                                                    archs)
    out["wall_s"] = time.perf_counter() - start
    write_json_atomic(path, out)
    log(f"  {root.name}: search {search_s:.0f} s, BN-recal evaluation "
        f"{out['ws+bn_eval_s']:.0f} s vs {out['ws_eval_s']:.0f} s plain")
    return out


def hypernet_logprob(state: Any, device: Any, archs: list[str]) -> list[float]:
    """log p(arch | device, accuracy-only preference) under the trained hypernetwork."""
    with torch.no_grad():
        probs = state.hypernet.probs(state.embedder(device.raw), torch.tensor([1.0, 0.0]),
                                     torch.as_tensor(device.prior, dtype=torch.float32))
    logp = torch.log(probs.clamp_min(1e-12))
    return [float(sum(logp[i, c] for i, c in enumerate(Arch.parse(a).choices))) for a in archs]


def portable(cfg: RunConfig, sections: tuple[str, ...], weights_id: str | None = None) -> str:
    """The digest of the config ``sections`` a result depends on, file paths (LUTs, encoder
    weights) replaced by the files' SHA-256, or the encoder's by ``weights_id`` where given
    (an encoder this script trains: its recipe): the same experiment in another checkout or
    on another machine has the same key, and a change elsewhere in the config keeps it."""
    data = {k: v for k, v in cfg.to_dict().items() if k in sections}
    for dev in data.get("devices", []):
        if dev.get("lut"):
            dev["lut"] = _file_sha(Path(dev["lut"]))
    weights = data["encoder"]["weights"]  # every section list holds the encoder
    if weights not in ("random", "imagenet", "auto"):
        data["encoder"]["weights"] = weights_id or _file_sha(Path(weights))
    return digest(data)


def result_key(cfg: RunConfig, sections: tuple[str, ...], weights_id: str | None = None
               ) -> str:
    """:func:`portable` plus where the training runs: results trained on a GPU (other
    numerics) never mix with CPU ones under one key."""
    key = portable(cfg, sections, weights_id)
    dev = cfg.compute.device
    where = "cuda" if dev.startswith("cuda") or (dev == "auto" and torch.cuda.is_available()) \
        else "cpu"
    return key if where == "cpu" else digest({"key": key, "device": where})


def _file_sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def warm_cache(path: Path) -> dict[str, Any]:
    """Stand-alone and signal results of an earlier run (its JSON's ``cache``), if any."""
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text()).get("cache", {}))


def export_cache(result: dict[str, Any]) -> dict[str, Any]:
    """What :func:`warm_cache` reads back: stand-alone mIoU by (arch@seed) under the truth's
    portable key, each supernet's signals under theirs."""
    out: dict[str, Any] = {}
    for c in result["conditions"].values():
        t = c["truth"]
        out[t["portable_key"]] = {f"{a}@{seed}": t["miou"][i][j]
                                  for i, seed in enumerate(t["seeds"])
                                  for j, a in enumerate(t["archs"])
                                  if t["miou"][i][j] is not None}
        for row in c["trainings"].values():
            out[row["key"]] = row
    return out


def correlation(signal: list[float], target: np.ndarray, seed: int) -> dict[str, Any]:
    tau = bootstrap_ci(signal, target, kendall_tau, seed=seed)
    rho = bootstrap_ci(signal, target, spearman_rho, seed=seed)
    return {"tau": tau.estimate, "tau_ci": [tau.low, tau.high], "rho": rho.estimate,
            "rho_ci": [rho.low, rho.high]}


def summarise(t: dict[str, Any], rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Noise ceiling, spreads, and every signal's correlation with the stand-alone mean."""
    full = np.array(t["miou"], dtype=float)  # (replicates, archs), NaN: not trained yet
    pairs = np.isfinite(full).all(axis=0)  # trained on every seed: the noise ceiling's
    done = np.isfinite(full).any(axis=0)  # trained on one seed at least: the signals'
    mean = np.nanmean(full[:, done], axis=0)
    noise = np.abs(full[0, pairs] - full[1, pairs])

    top = mean >= np.median(mean)  # where a budget's choice is actually made

    def entry(values: list[float]) -> dict[str, Any]:
        v = np.asarray(values)[done]
        upper = correlation(v[top].tolist(), mean[top], 0)
        return {**correlation(v.tolist(), mean, 0), "values": values,
                "top_half": {"tau": upper["tau"], "tau_ci": upper["tau_ci"]}}

    table: dict[str, Any] = {}
    for name, row in rows.items():
        for kind in ("ws", "ws+bn", "hypernet-pref"):
            if kind in row:
                table[f"{name}:{kind}"] = entry(row[kind])
    for name, scores in t["proxies"].items():
        table[f"proxy:{name}"] = entry(scores)
    table["latency"] = entry(t["latency_ms"])
    sd = float(mean.std(ddof=1))
    one_sd = float(noise.mean() / np.sqrt(2))  # std of one training, from |a - b|
    return {
        "archs_with_every_seed": int(pairs.sum()), "archs_trained": int(done.sum()),
        "trained": done.tolist(),
        "noise_ceiling": correlation(full[0, pairs].tolist(), full[1, pairs], 0),
        "standalone_mean": [float(np.mean(full[np.isfinite(full[:, j]), j])) if d else None
                            for j, d in enumerate(done)],
        "spread": {"range": float(mean.max() - mean.min()), "std": sd,
                   "seed_diff_mean": float(noise.mean()), "seed_diff_max": float(noise.max()),
                   # across-arch spread over one seed's noise (|a - b| / sqrt(2) estimates
                   # the std of one training)
                   "snr": float(sd / max(one_sd, 1e-12)),
                   "iqr": float(np.subtract(*np.percentile(mean, [75, 25]))),
                   # architectures whose mean is within two noise standard deviations
                   # (of a difference of means) of the best
                   "within_noise_of_best": int((mean >= mean.max() - 2 * one_sd).sum())},
        "signals": table,
        "by_layer_op": by_layer_op([a for a, d in zip(t["archs"], done, strict=True) if d],
                                   mean),
    }


def by_layer_op(archs: list[str], miou: np.ndarray) -> dict[str, dict[str, Any]]:
    """Mean stand-alone mIoU (and count) of the architectures having each op at each layer:
    where in the space the accuracy differences live."""
    out: dict[str, dict[str, Any]] = {}
    for layer in range(NUM_LAYERS):
        ops = [parse_choice(a.split("-")[layer])[0] for a in archs]
        out[f"layer{layer + 1}"] = {
            op: {"n": ops.count(op),
                 "mean": float(np.mean([m for o, m in zip(ops, miou, strict=True) if o == op]))}
            for op in OPS if op in ops}
    return out


def op_output_coverage(seed: int) -> dict[str, float]:
    """Fraction of output pixels each bare decoder op writes (a pixel no tap reaches carries
    only what follows: BN shift, projection): 1.0 for a dense op. Seeded random weights and
    input; one layer-shaped example, 8 channels at 8x8 -> 16x16."""
    torch.manual_seed(seed)
    out = {}
    with torch.no_grad():
        for op in OPS:
            y = build_op(op, 8, 8)(torch.randn(2, 8, 8, 8))
            out[op] = float((y.abs().sum(dim=(0, 1)) > 0).float().mean())
    return out


def run_condition(cond: str, args: argparse.Namespace, log: Callable[[str], None]
                  ) -> dict[str, Any]:
    weights, ident = "random", None
    if cond == "adapted" and args.weights:
        weights = str(args.weights)
    elif cond == "adapted":
        path, ident = adapted_encoder(args.cache, args.lut, log)
        weights = str(path)
    profile = base_profile(args.lut, weights)
    root = args.cache / cond
    archs = truth_archs(config(profile, {}), args.n_archs)
    log(f"[{cond}] encoder {weights}; {len(archs)} architectures")
    out: dict[str, Any] = {"encoder_weights": weights, "encoder_recipe": ident}
    train = args.part != "report"
    if args.part in ("truth", "all", "report"):
        out["truth"] = truth(root / "truth", config(profile, {}), archs, log, args.warm,
                             args.worker, train, ident)
    if args.part in ("signals", "all", "report"):
        out["trainings"] = {}
        for name in args.trainings:
            log(f"[{cond}] supernet '{name}' {TRAININGS[name] or '(the demo)'}")
            row = signals(root / name, config(profile, TRAININGS[name]),
                          [str(a) for a in archs], log, args.warm, train, ident)
            if row is not None:
                out["trainings"][name] = row
    if args.part in ("all", "report"):
        out.update(summarise(out["truth"], out["trainings"]))
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = []
    for cond, c in result["conditions"].items():
        s, n = c["spread"], c["noise_ceiling"]
        lines += [f"## encoder: {cond} ({c['encoder_weights']})", "",
                  f"stand-alone mIoU of the {c['archs_trained']} of {len(c['trained'])} "
                  f"archs trained so far ({c['archs_with_every_seed']} on both seeds): range "
                  f"{s['range']:.4f}, std {s['std']:.4f}; |seed 0 - seed 1| mean "
                  f"{s['seed_diff_mean']:.4f}, max {s['seed_diff_max']:.4f}; noise ceiling "
                  f"(seed vs seed) tau {n['tau']:.3f} [{n['tau_ci'][0]:.3f}, "
                  f"{n['tau_ci'][1]:.3f}], rho {n['rho']:.3f}", "",
                  f"interquartile range {s['iqr']:.4f}; {s['within_noise_of_best']} archs "
                  "within two noise standard deviations of the best", "",
                  "| signal | Kendall tau [95% CI] | Spearman rho [95% CI] | tau, top half "
                  "[95% CI] |", "|---|---|---|---|"]
        for name, r in c["signals"].items():
            u = r["top_half"]
            lines.append(f"| {name} | {r['tau']:.3f} [{r['tau_ci'][0]:.3f}, "
                         f"{r['tau_ci'][1]:.3f}] | {r['rho']:.3f} [{r['rho_ci'][0]:.3f}, "
                         f"{r['rho_ci'][1]:.3f}] | {u['tau']:.3f} [{u['tau_ci'][0]:.3f}, "
                         f"{u['tau_ci'][1]:.3f}] |")
        lines += ["", "mean stand-alone mIoU (count) of the architectures with each op at each "
                  "layer:", "", "| layer | " + " | ".join(OPS) + " |",
                  "|---" * (len(OPS) + 1) + "|"]
        for layer, cells in c["by_layer_op"].items():
            lines.append(f"| {layer} | " + " | ".join(
                f"{cells[op]['mean']:.3f} ({cells[op]['n']})" if op in cells else "-"
                for op in OPS) + " |")
        lines.append("")
    cover = result.get("op_output_coverage")
    if cover:
        lines += ["fraction of output pixels each bare op writes (1.0: dense): " + ", ".join(
            f"{op} {f:.2f}" for op, f in cover.items()), ""]
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    """Signal vs stand-alone mIoU (mean of the seeds trained, bar: their spread), one panel
    per (condition, signal)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(cond, name, r) for cond, c in result["conditions"].items()
              for name, r in c["signals"].items()]
    if not panels:
        return
    cols = 4
    fig, axes = plt.subplots(-(-len(panels) // cols), cols, squeeze=False,
                             figsize=(4 * cols, 3.4 * -(-len(panels) // cols)))
    for ax, (cond, name, r) in zip(axes.flat, panels, strict=False):
        c = result["conditions"][cond]
        sa = np.array(c["truth"]["miou"], dtype=float)
        mean = np.array([x if x is not None else np.nan for x in c["standalone_mean"]])
        ax.errorbar(r["values"], mean, yerr=np.nan_to_num(np.abs(sa[0] - sa[1]) / 2),
                    fmt="o", ms=3, alpha=0.7)
        ax.set_title(f"{cond} / {name}\ntau {r['tau']:.2f} [{r['tau_ci'][0]:.2f}, "
                     f"{r['tau_ci'][1]:.2f}]", fontsize=8)
        ax.set_xlabel("weight-sharing mIoU" if ":ws" in name else name, fontsize=8)
        ax.set_ylabel("stand-alone mIoU (seed mean)", fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="JSON file to write (+ .md, .png)")
    p.add_argument("--cache", type=Path, default=Path(".cache/ranking_fidelity"))
    p.add_argument("--lut", type=Path, default=REFERENCE_LUT,
                   help="reference device LUT at the demo's size (stratifies the archs)")
    p.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    p.add_argument("--trainings", nargs="+", default=list(TRAININGS), choices=list(TRAININGS))
    p.add_argument("--part", default="all", choices=("all", "truth", "signals", "report"),
                   help="report: tables and plot from what is done so far, training nothing")
    p.add_argument("--n-archs", type=int, default=24)
    p.add_argument("--warm-from", type=Path, default=None,
                   help="an earlier result JSON whose results are reused where their keys "
                        "match (default: --out itself, so a rerun is cheap)")
    p.add_argument("--worker", type=int, default=None,
                   help="with --part truth: worker K of several processes sharing the "
                        "stand-alone trainings (each claims the next item nobody has)")
    p.add_argument("--weights", type=Path, default=None,
                   help="encoder state_dict for the adapted condition (default: fine-tune "
                        "the random encoder here), e.g. real ImageNet weights")
    a = p.parse_args()
    a.cache = a.cache.resolve()
    a.warm = warm_cache(a.warm_from or a.out)
    torch.set_num_threads(1)
    start = time.perf_counter()

    def log(m: str) -> None:
        print(f"[{time.perf_counter() - start:6.0f} s] {m}", flush=True)

    result: dict[str, Any] = {"n_archs": a.n_archs, "replicates": N_REPLICATES,
                              "reference_lut": str(a.lut), "trainings": {
                                  k: TRAININGS[k] for k in a.trainings},
                              "recipe": "the demo's final training (linas.distill."
                                        "FinalTrainConfig defaults, CE only)",
                              "conditions": {}}
    for cond in a.conditions:
        result["conditions"][cond] = run_condition(cond, a, log)
    result["wall_time_s"] = round(time.perf_counter() - start, 1)
    if a.part in ("truth", "signals"):
        log(f"part {a.part} done")
        return
    result["op_output_coverage"] = op_output_coverage(0)
    result["cache"] = export_cache(result)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(a.out, result)
    table = markdown(result)
    a.out.with_suffix(".md").write_text(f"# Ranking fidelity ({result['wall_time_s']:.0f} s)"
                                        f"\n\n{table}")
    plot(result, a.out.with_suffix(".png"))
    print(table + f"\nwall time {result['wall_time_s']:.0f} s; wrote {a.out}")


if __name__ == "__main__":
    main()
