"""Pareto strategies: which architectures to evaluate (``baseline`` sampling or I3
``zero-cost``), registered by name, and one device's front and selection (SPEC section 5).

The run layer (:mod:`linas.run.fronts`) evaluates the chosen architectures once by weight
sharing and calls :func:`device_front` per device."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import spearmanr

from linas._registry import Registry
from linas.latency.model import LUTLatencyModel
from linas.pareto.front import pareto_front
from linas.pareto.indicators import hypervolume_2d, reference_point
from linas.pareto.sampling import baseline_eval_subset, mixed_candidates
from linas.pareto.selection import budget_share, select_under_budget
from linas.space import Arch

if TYPE_CHECKING:  # the proxies import torch and the supernet: only when zero-cost runs
    from linas.data.features import FeatureSet
    from linas.supernet import Supernet


@dataclass(frozen=True)
class ParetoConfig:
    """Budgets of the Pareto search.

    ``baseline``: ``n_candidates`` sampled (random / logit / stratified), ``n_evaluate``
    evaluated. ``zero-cost`` (I3): ``n_sample`` scored by ``proxy`` (decoder ``proxy_init``:
    ``seed`` or ``supernet``, on ``proxy_batch`` cached training images) and LUT latency,
    ``n_prefilter`` kept, ``n_evaluate`` evaluated.

    ``bn_recal_batches``: before each weight-sharing evaluation, the path's BatchNorm
    statistics are recomputed on this many training batches (restored after); 0 evaluates
    with the supernet's shared statistics (see benchmarks/ranking_fidelity.py for what each
    choice does to the ranking, and its cost).
    """

    n_candidates: int = 1000
    n_evaluate: int = 100
    seed: int = 0
    strategy: str = "baseline"
    n_sample: int = 10_000
    n_prefilter: int = 500
    proxy: str = "near"
    proxy_init: str = "seed"
    proxy_batch: int = 1
    bn_recal_batches: int = 0


@dataclass
class Evaluated:
    """Architectures evaluated by weight sharing: choices (N, 5) and their mIoU (N,)."""

    choices: np.ndarray
    miou: np.ndarray


@dataclass
class PickContext:
    """What a Pareto strategy may use to choose the architectures to evaluate.

    Args:
        models: every device's latency model, in device order.
        logits: the bi-level search's architecture logits (5, 21), or None (hypernet run).
        net: the trained supernet (proxies read its decoder; the encoder is never used).
        split: cached features of the training split (the proxy batch comes from it).
        num_classes: classes of the task.
        ignore_index: label ignored by gradient proxies.
    """

    models: list[LUTLatencyModel]
    logits: np.ndarray | None
    net: Supernet
    split: FeatureSet
    num_classes: int
    ignore_index: int = 255

    def latencies(self, choices: np.ndarray) -> np.ndarray:
        """Predicted latencies (N, D) of choices (N, 5) on every device."""
        return np.stack([m.predict(choices) for m in self.models], axis=1)


Picker = Callable[[ParetoConfig, PickContext], tuple[np.ndarray, dict[str, Any]]]
PARETO_STRATEGIES: Registry[Picker] = Registry("pareto strategy")


@PARETO_STRATEGIES.register("baseline")
def pick_baseline(config: ParetoConfig, ctx: PickContext) -> tuple[np.ndarray, dict[str, Any]]:
    """Sample ``n_candidates`` (random / logit-guided / latency-stratified) and choose
    ``n_evaluate`` diverse ones; returns (choices (n_evaluate, 5), info)."""
    logits = ctx.logits if ctx.logits is not None else np.zeros((5, 21))  # uniform
    tables = [m.exhaustive() for m in ctx.models]
    cands = mixed_candidates(config.n_candidates, config.seed, logits, tables)
    # every device's fastest candidate first, then a spread over all devices' latencies
    keep = baseline_eval_subset(cands, ctx.latencies(cands), config.n_evaluate, config.seed)
    return cands[np.asarray(keep)], {"strategy": "baseline", "candidates": config.n_candidates}


@PARETO_STRATEGIES.register("zero-cost")
def pick_zero_cost(config: ParetoConfig, ctx: PickContext) -> tuple[np.ndarray, dict[str, Any]]:
    """The I3 selection (:mod:`linas.pareto.zero_cost`) with the configured proxy: ``n_sample``
    scored, ``n_prefilter`` kept by per-device non-dominated rank, ``n_evaluate`` diverse.

    Returns:
        ``(choices to evaluate (n_evaluate, 5), info)``; ``info`` records the strategy, sizes,
        proxy, timings and the proxy scores of the evaluated architectures.

    Raises:
        ConfigError: on an unknown proxy or init, or features that are not cached.
    """
    from linas.pareto.proxies import get_proxy, proxy_context
    from linas.pareto.zero_cost import zero_cost_pick

    proxy = get_proxy(config.proxy)
    start = time.perf_counter()
    pctx = proxy_context(ctx.split, ctx.num_classes, config.seed, config.proxy_batch,
                         config.proxy_init, ctx.net, ctx.ignore_index)
    pick = zero_cost_pick(lambda c: proxy.score(c, pctx), ctx.latencies, config.n_sample,
                          config.n_prefilter, config.n_evaluate, config.seed)
    info = {"strategy": "zero-cost", "proxy": config.proxy, "proxy_init": config.proxy_init,
            "proxy_batch_images": config.proxy_batch, "input_size": list(pctx.input_size),
            "sampled": int(pick.sampled.shape[0]), "prefiltered": int(pick.prefiltered.shape[0]),
            "prefilter": "per-device non-dominated ranks of (latency, score), best over devices",
            "scoring_s": round(time.perf_counter() - start, 2),
            "evaluated_scores": pick.scores[pick.order].tolist()}
    return pick.picked, info


def finish_search_info(info: dict[str, Any], miou: np.ndarray) -> dict[str, Any]:
    """Add the evaluated count and, for a proxy-guided search, the Spearman rho of the proxy
    scores of the evaluated architectures against their weight-sharing mIoU."""
    out = {**info, "evaluated": int(miou.shape[0])}
    scores = out.pop("evaluated_scores", None)
    if scores is not None:
        rho = spearmanr(scores, miou).statistic if miou.shape[0] > 2 else float("nan")
        out["proxy_spearman_rho_evaluated"] = None if not np.isfinite(rho) else float(rho)
    return out


def device_front(evaluated: Evaluated, model: LUTLatencyModel,
                 budget_ms: float) -> dict[str, Any]:
    """Front, hypervolume and budget-constrained selection of one device.

    The latency range, the hypervolume reference point and the share of the space within
    budget come from the latency of the whole space (:meth:`LUTLatencyModel.exhaustive`).
    """
    exhaustive = model.exhaustive()
    lat = model.predict(evaluated.choices)
    acc = evaluated.miou
    idx = pareto_front(lat, acc)
    ref = reference_point(float(exhaustive.max()))
    sel = select_under_budget(lat, acc, budget_ms)
    selected = None
    if sel is not None:
        selected = {"arch": str(Arch(tuple(evaluated.choices[sel]))),
                    "latency_ms": float(lat[sel]), "miou": float(acc[sel]),
                    "meets_budget": bool(lat[sel] <= budget_ms)}
    else:  # nothing evaluated meets the budget: report the fastest, flagged
        f = int(np.argmin(lat))
        selected = {"arch": str(Arch(tuple(evaluated.choices[f]))),
                    "latency_ms": float(lat[f]), "miou": float(acc[f]), "meets_budget": False}
    return {
        "budget_ms": budget_ms,
        "front": [{"arch": str(Arch(tuple(evaluated.choices[i]))), "latency_ms": float(lat[i]),
                   "miou": float(acc[i])} for i in idx],
        "hypervolume": hypervolume_2d(lat, acc, ref),
        "hv_reference": [ref[0], ref[1]],
        "selected": selected,
        "latency_range_ms": [float(exhaustive.min()), float(exhaustive.max())],
        "space_share_within_budget": budget_share(exhaustive, budget_ms),
        "evaluated": {"latency_ms": lat.tolist(), "miou": acc.tolist()},
    }
