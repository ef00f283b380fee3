"""The Pareto stage: choose candidates (``baseline`` or I3 ``zero-cost`` strategy), evaluate
them by weight sharing, build fronts and select per device (SPEC.md section 5)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import spearmanr

from linas._errors import unknown_name
from linas.latency.model import LUTLatencyModel
from linas.pareto.front import pareto_front
from linas.pareto.indicators import hypervolume_2d, reference_point
from linas.pareto.sampling import baseline_eval_subset, mixed_candidates
from linas.pareto.selection import budget_share, select_under_budget
from linas.space import NUM_CHOICES, NUM_LAYERS, Arch

if TYPE_CHECKING:  # the proxies import torch and the supernet: only when zero-cost runs
    from linas.data.features import FeatureSet
    from linas.supernet import Supernet

STRATEGIES = ("baseline", "zero-cost")


@dataclass(frozen=True)
class ParetoConfig:
    """Budgets of the Pareto search.

    ``baseline``: ``n_candidates`` sampled (random / logit / stratified), ``n_evaluate``
    evaluated. ``zero-cost`` (I3): ``n_sample`` scored by ``proxy`` (decoder ``proxy_init``:
    ``seed`` or ``supernet``, on ``proxy_batch`` cached training images) and LUT latency,
    ``n_prefilter`` kept, ``n_evaluate`` evaluated.
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


def check_pareto_strategy(name: str) -> str:
    """``name`` when it is a known Pareto strategy.

    Raises:
        ConfigError: for an unknown name, listing the strategies and the closest match.
    """
    if name not in STRATEGIES:
        raise unknown_name("pareto strategy", name, STRATEGIES)
    return name


@dataclass
class Evaluated:
    """Architectures evaluated by weight sharing: choices (N, 5) and their mIoU (N,)."""

    choices: np.ndarray
    miou: np.ndarray


def pick_for_evaluation(logits: np.ndarray, tables: Sequence[np.ndarray], config: ParetoConfig,
                        latencies: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Sample ``n_candidates`` (random / logit-guided / latency-stratified) and choose
    ``n_evaluate`` diverse ones to evaluate; returns choices (n_evaluate, 5)."""
    cands = mixed_candidates(config.n_candidates, config.seed, logits, list(tables))
    # every device's fastest candidate first, then a spread over all devices' latencies
    keep = baseline_eval_subset(cands, latencies(cands), config.n_evaluate, config.seed)
    return cands[np.asarray(keep)]


def pick_zero_cost(config: ParetoConfig, net: Supernet, split: FeatureSet, num_classes: int,
                   latencies: Callable[[np.ndarray], np.ndarray],
                   ignore_index: int = 255) -> tuple[np.ndarray, dict[str, Any]]:
    """The I3 selection (:mod:`linas.pareto.zero_cost`) with the configured proxy.

    Args:
        config: sizes, proxy name, its decoder init and batch, seed.
        net: the supernet (its decoder is read for ``proxy_init='supernet'``; the encoder is
            never used: the proxy batch comes from ``split``'s cached features).
        split: the split the proxy batch is drawn from (cached features).
        num_classes: classes of the task.
        latencies: LUT latencies (N, D) of choices (N, 5), every device.
        ignore_index: label ignored by gradient proxies.

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
    ctx = proxy_context(split, num_classes, config.seed, config.proxy_batch, config.proxy_init,
                        net, ignore_index)
    pick = zero_cost_pick(lambda c: proxy.score(c, ctx), latencies, config.n_sample,
                          config.n_prefilter, config.n_evaluate, config.seed)
    info = {"strategy": "zero-cost", "proxy": config.proxy, "proxy_init": config.proxy_init,
            "proxy_batch_images": config.proxy_batch, "input_size": list(ctx.input_size),
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


def exact_latencies(model: LUTLatencyModel) -> np.ndarray:
    """Latency of all 21**5 architectures in float64, indexed by architecture id.

    :meth:`LUTLatencyModel.exhaustive` is float32 (fast, for sampling); the reported range,
    reference point and budget share use these float64 values, summed in the order of
    :meth:`LUTLatencyModel.predict` (5 entries, fixed part, pair terms) so that they equal its
    predictions bit for bit.
    """
    grid = np.zeros((NUM_CHOICES,) * NUM_LAYERS)
    for i in range(NUM_LAYERS):
        shape = [1] * NUM_LAYERS
        shape[i] = NUM_CHOICES
        grid += model.table[i].reshape(shape)
    grid += model.fixed
    if model.pairs is not None:
        for i in range(NUM_LAYERS - 1):
            shape = [1] * NUM_LAYERS
            shape[i], shape[i + 1] = NUM_CHOICES, NUM_CHOICES
            grid += model.pairs[i].reshape(shape)
    return grid.reshape(-1)


def device_front(evaluated: Evaluated, model: LUTLatencyModel, budget_ms: float,
                 exhaustive: np.ndarray) -> dict[str, Any]:
    """Front, hypervolume and budget-constrained selection of one device.

    ``exhaustive`` is the latency of the whole space (pass :func:`exact_latencies` for exact
    float64 range, reference point and budget share).
    """
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
