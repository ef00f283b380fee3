"""Pareto search: 2-D fronts, hypervolume (2-D, 3-D) / IGD, candidate sampling, selection.

Objectives are (latency in ms, minimised; mIoU, maximised). Fronts and indicators are pure
numpy. The torch-based parts are imported from their modules: zero-cost proxies
(:mod:`linas.pareto.proxies`: ``get_proxy``, ``proxy_context``, ``PROXIES``), the I3 selection
(:mod:`linas.pareto.zero_cost`), the strategies (:mod:`linas.pareto.strategies`) and the fleet
plan (:mod:`linas.pareto.fleet`).
"""

from linas.pareto.diversity import baseline_eval_subset, diverse_subset
from linas.pareto.front import non_dominated_mask, non_dominated_ranks, pareto_front
from linas.pareto.indicators import (
    IGD,
    Hypervolume,
    Indicator,
    evaluations_to_reach,
    hypervolume_2d,
    hypervolume_3d,
    hypervolume_trace,
    igd,
    reference_point,
)
from linas.pareto.sampling import (
    SAMPLERS,
    SPACE_SIZE,
    get_sampler,
    mixed_candidates,
    register_sampler,
    sample,
    sample_logit,
    sample_random,
    sample_stratified,
)
from linas.pareto.selection import budget_share, select_under_budget
from linas.pareto.zero_cost import ZeroCostPick, prefilter, select_zero_cost, zero_cost_pick

__all__ = [
    "ZeroCostPick",
    "Hypervolume",
    "IGD",
    "Indicator",
    "SAMPLERS",
    "SPACE_SIZE",
    "baseline_eval_subset",
    "budget_share",
    "diverse_subset",
    "evaluations_to_reach",
    "get_sampler",
    "hypervolume_2d",
    "hypervolume_3d",
    "hypervolume_trace",
    "igd",
    "mixed_candidates",
    "non_dominated_mask",
    "non_dominated_ranks",
    "pareto_front",
    "prefilter",
    "reference_point",
    "register_sampler",
    "sample",
    "sample_logit",
    "sample_random",
    "sample_stratified",
    "select_under_budget",
    "select_zero_cost",
    "zero_cost_pick",
]
