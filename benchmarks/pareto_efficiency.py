"""Search efficiency of the Pareto strategies: hypervolume after k weight-sharing evaluations.

On a supernet trained by the pipeline's search stage (small setting, stated in the JSON):

* a reference pool: ``--reference`` random architectures plus every architecture any strategy
  evaluates; the reference hypervolume of a device is that of the whole pool;
* per seed, ``baseline`` evaluates its 1,000 sampled candidates in its own selection order
  (every device's fastest, then farthest-point; its first 100 are what ``linas pareto``
  evaluates) and ``zero-cost`` (I3) its 500 pre-filtered ones in diversity order (first 100 =
  ``linas pareto --strategy zero-cost``);
* hypervolume after k evaluations (share of the reference, mean over devices), and the
  evaluations needed until every device reaches 95% of its reference hypervolume;
* Spearman rho of every proxy against weight-sharing mIoU on the random reference archs.

The trained supernet, the evaluations and proxy scores are cached under ``--cache``
(git-ignored), in a folder keyed by the run config's hash (another setting never reuses them),
so a rerun only redoes what is missing.

Devices: this machine (``this-cpu``, measured at ``--size``) plus every reference LUT. Those
were measured at 128x128 and the run layer refuses a LUT of another input size, so a LUT that
does not match ``--size`` is read as it is (its 128x128 latencies, as this benchmark always
used them) instead of through ``linas.run.prepare``; see ``benchmarks/_shared.py``.

    flock /tmp/linas-cpu.lock .venv/bin/python benchmarks/pareto_efficiency.py \
        --out benchmarks/results/pareto_efficiency.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from _shared import prepare_run  # benchmarks/_shared.py (the script's folder is on sys.path)
from scipy.stats import spearmanr

from linas.config import RunConfig, load_config
from linas.latency import LUTLatencyModel, find_luts, load_lut
from linas.pareto import (
    baseline_eval_subset,
    hypervolume_trace,
    mixed_candidates,
    reference_point,
    sample_random,
    zero_cost_pick,
)
from linas.pareto.proxies import PROXIES, get_proxy, proxy_context
from linas.progress import Reporter
from linas.run.search import run_search
from linas.search import evaluate_choices
from linas.space import choices_to_ids, ids_to_choices

LUT_DIR = Path(__file__).resolve().parents[2] / "shared/reference-luts"
KS = (10, 25, 50, 100, 200, 500, 1000)


def supernet_config(args: argparse.Namespace) -> RunConfig:
    """The small training setting (recorded in the output): this machine measured with 1
    warm-up and 5 repeats per LUT entry, plus every reference LUT."""
    devices: list[dict[str, Any]] = [{"name": "this-cpu",
                                      "measure": {"warmup": 1, "repeat": 5}}]
    if LUT_DIR.is_dir():
        devices += [{"name": load_lut(p).name, "lut": str(p.resolve())}
                    for p in find_luts([LUT_DIR])]
    return load_config(None, [
        "seed=0", f"data.n_images={args.n_images}", f"data.size=[{args.size}, {args.size}]",
        "encoder.weights=auto", f"search.warmup_epochs={args.warmup_epochs}",
        f"search.search_epochs={args.search_epochs}", "search.soft_epochs=1",
        "search.batch_size=16", "devices=" + json.dumps(devices)])


class EvalCache:
    """Weight-sharing mIoU by architecture id, persisted as ``evals.json``."""

    def __init__(self, path: Path, run: Any, ctx: Any) -> None:
        self.path, self.run, self.ctx = path, run, ctx
        self.miou: dict[int, float] = ({int(k): v for k, v in json.loads(path.read_text()).items()}
                                       if path.is_file() else {})

    def __call__(self, choices: np.ndarray) -> np.ndarray:
        ids = choices_to_ids(choices).tolist()
        todo = [i for i in dict.fromkeys(ids) if i not in self.miou]
        nc, ign = self.run.results["num_classes"], self.run.results.get("ignore_index", 255)
        for n, arch_id in enumerate(todo):
            row = ids_to_choices(np.array([arch_id]))[0].tolist()
            self.miou[arch_id], _ = evaluate_choices(self.ctx.net, self.ctx.splits["arch_val"],
                                                     row, nc, ign)
            if n % 200 == 199:
                self.save()
        self.save()
        return np.array([self.miou[i] for i in ids])

    def save(self) -> None:
        self.path.write_text(json.dumps({str(k): v for k, v in self.miou.items()}))


def cached_scores(path: Path, compute: Any) -> np.ndarray:
    if path.is_file():
        return np.load(path)
    scores = compute()
    np.save(path, scores)
    return scores


def traces(choices: np.ndarray, miou: np.ndarray, models: dict[str, LUTLatencyModel],
           refs: dict[str, tuple[float, float]], ref_hv: dict[str, float]) -> np.ndarray:
    """Hypervolume share of the reference after k = 1..n evaluations, per device (D, n)."""
    return np.stack([hypervolume_trace(m.predict(choices), miou, refs[d]) / ref_hv[d]
                     for d, m in models.items()])


def evals_to(trace: np.ndarray, fraction: float = 0.95) -> int | None:
    """Evaluations until every device reaches ``fraction`` (None if never)."""
    firsts = []
    for row in trace:
        hit = np.flatnonzero(row >= fraction - 1e-12)
        if not hit.size:
            return None
        firsts.append(int(hit[0]) + 1)
    return max(firsts)


def run_strategies(args: argparse.Namespace, cache: EvalCache, ctx: Any, state: Any,
                   models: dict[str, LUTLatencyModel]) -> dict[str, list[dict[str, Any]]]:
    """Evaluation orders and mIoU of each strategy and seed (evaluated through the cache)."""
    tables = [m.exhaustive() for m in models.values()]

    def lat(c: np.ndarray) -> np.ndarray:
        return np.stack([m.predict(c) for m in models.values()], axis=1)

    nc = cache.run.results["num_classes"]
    out: dict[str, list[dict[str, Any]]] = {"baseline": [], "zero-cost": []}
    for seed in range(args.seeds):
        cands = mixed_candidates(1000, seed, state.logits.numpy(), tables)
        order = cands[baseline_eval_subset(cands, lat(cands), 1000, seed)]
        out["baseline"].append({"seed": seed, "choices": order, "miou": cache(order)})
        pctx = proxy_context(ctx.splits["train"], nc, seed, batch_size=1)
        start = time.perf_counter()
        path = args.cache / f"near_seed{seed}_{args.n_sample}.npy"

        def score(c: np.ndarray, p: Any = pctx, path: Path = path) -> np.ndarray:
            return cached_scores(path, lambda: get_proxy("near").score(c, p))

        pick = zero_cost_pick(score, lat, args.n_sample, 500, 500, seed)
        out["zero-cost"].append({"seed": seed, "choices": pick.picked,
                                 "miou": cache(pick.picked),
                                 "scoring_s": time.perf_counter() - start})
    return out


def proxy_correlations(args: argparse.Namespace, ref_choices: np.ndarray, ref_miou: np.ndarray,
                       ctx: Any, nc: int) -> dict[str, Any]:
    """Spearman rho of each proxy (and NEAR on the supernet's own decoder) vs mIoU."""
    out: dict[str, Any] = {}
    for init in ("seed", "supernet"):
        pctx = proxy_context(ctx.splits["train"], nc, 0, batch_size=1, init=init,
                             supernet=ctx.net)
        for name in sorted(PROXIES):
            n = min(args.grad_archs, len(ref_choices)) if name == "grad_norm" else None
            if init == "supernet" and name in ("params", "flops"):
                continue  # weight-free: identical to the seed row
            scores = cached_scores(args.cache / f"proxy_{name}_{init}_{len(ref_choices)}.npy",
                                   lambda name=name, n=n, p=pctx: get_proxy(name).score(
                                       ref_choices[:n], p))
            rho = spearmanr(scores, ref_miou[: len(scores)]).statistic
            out[f"{name}[{init}]"] = {"spearman_rho": float(rho), "archs": int(len(scores))}
    return out


def summarise(per_seed: list[dict[str, Any]], tr: list[np.ndarray]) -> dict[str, Any]:
    reach = [evals_to(t) for t in tr]
    hit = [r for r in reach if r is not None]
    n_max = min(t.shape[1] for t in tr)
    return {
        "evals_to_95_all_devices": reach,
        "evals_to_95_mean": float(np.mean(hit)) if hit else None,
        "evals_to_95_std": float(np.std(hit)) if hit else None,
        "seeds_reaching_95": f"{len(hit)}/{len(reach)}",
        "evaluations_available": n_max,
        "hv_share_at_k": {str(k): [float(t[:, k - 1].mean()) for t in tr] for k in KS
                          if k <= n_max},
        "mean_hv_trace": np.mean([t.mean(axis=0)[:n_max] for t in tr], axis=0).tolist(),
    }


def plot(path: Path, summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, s in summary.items():
        y = np.asarray(s["mean_hv_trace"])
        ax.plot(np.arange(1, y.shape[0] + 1), y, label=name)
    ax.axhline(0.95, color="grey", ls="--", lw=0.8, label="95% of reference")
    ax.set(xscale="log", xlabel="weight-sharing evaluations",
           ylabel="HV / reference HV (mean: devices, seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path(".cache/pareto_efficiency"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--n-images", type=int, default=96)
    parser.add_argument("--warmup-epochs", type=int, default=4)
    parser.add_argument("--search-epochs", type=int, default=2)
    parser.add_argument("--reference", type=int, default=1000)
    parser.add_argument("--grad-archs", type=int, default=200)
    parser.add_argument("--n-sample", type=int, default=10_000, help="zero-cost sample size")
    args = parser.parse_args()
    cfg = supernet_config(args)
    args.cache = args.cache / cfg.sha256()[:12]  # evaluations belong to this run's supernet
    args.cache.mkdir(parents=True, exist_ok=True)
    rep = Reporter(quiet=True)
    run, ctx = prepare_run(cfg, args.cache / "run", rep)
    with run.stage("search"):  # trains (or resumes, or loads) the checkpointed search
        state = run_search(run, ctx)
    run.save()
    models = ctx.models
    refs = {d: reference_point(float(m.exhaustive().max())) for d, m in models.items()}
    cache = EvalCache(args.cache / "evals.json", run, ctx)
    ref_choices = sample_random(args.reference, seed=12345)
    ref_miou = cache(ref_choices)
    runs = run_strategies(args, cache, ctx, state, models)
    pool = ids_to_choices(np.array(sorted(cache.miou)))
    pool_miou = cache(pool)
    ref_hv = {d: float(hypervolume_trace(m.predict(pool), pool_miou, refs[d])[-1])
              for d, m in models.items()}
    summary = {name: summarise(seeds, [traces(s["choices"], s["miou"], models, refs, ref_hv)
                                       for s in seeds]) for name, seeds in runs.items()}
    result = {
        "setting": {"input_size": [args.size, args.size], "n_images": args.n_images,
                    "search": {"warmup_epochs": args.warmup_epochs,
                               "search_epochs": args.search_epochs},
                    "encoder_weights": run.results.get("encoder_weights"),
                    "devices": list(models), "seeds": args.seeds,
                    "reference_random_archs": args.reference,
                    "reference_pool_evaluations": len(pool),
                    "proxy_batch_images": 1, "zero_cost_sample": args.n_sample},
        "reference_hypervolume": ref_hv,
        "strategies": {k: {kk: vv for kk, vv in v.items() if kk != "mean_hv_trace"}
                       for k, v in summary.items()},
        "zero_cost_scoring_s": [s["scoring_s"] for s in runs["zero-cost"]],
        "proxy_spearman_vs_miou": proxy_correlations(args, ref_choices, ref_miou, ctx,
                                                     run.results["num_classes"]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    plot(args.out.with_suffix(".png"), summary)
    print(json.dumps({k: result[k] for k in ("strategies", "proxy_spearman_vs_miou")}, indent=2))


if __name__ == "__main__":
    main()
