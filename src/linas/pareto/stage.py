"""The baseline Pareto stage: sample candidates, evaluate some by weight sharing, build fronts
and select per device (SPEC.md section 5)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from linas.latency.model import LUTLatencyModel
from linas.pareto.front import pareto_front
from linas.pareto.indicators import hypervolume_2d, reference_point
from linas.pareto.sampling import baseline_eval_subset, mixed_candidates
from linas.pareto.selection import budget_share, select_under_budget
from linas.space import Arch


@dataclass(frozen=True)
class ParetoConfig:
    """Budgets of the baseline Pareto search."""

    n_candidates: int = 1000
    n_evaluate: int = 100
    seed: int = 0


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


def device_front(evaluated: Evaluated, model: LUTLatencyModel, budget_ms: float,
                 exhaustive: np.ndarray) -> dict[str, Any]:
    """Front, hypervolume and budget-constrained selection of one device."""
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
