"""Pareto search: 2-D fronts, hypervolume / IGD, candidate sampling, selection.

Objectives are (latency in ms, minimised; mIoU, maximised). Fronts and indicators are pure
numpy.
"""

from linas.pareto.diversity import baseline_eval_subset, diverse_subset
from linas.pareto.front import non_dominated_mask, non_dominated_ranks, pareto_front
from linas.pareto.indicators import (
    IGD,
    Hypervolume,
    Indicator,
    evaluations_to_reach,
    hypervolume_2d,
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

__all__ = [
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
    "hypervolume_trace",
    "igd",
    "mixed_candidates",
    "non_dominated_mask",
    "non_dominated_ranks",
    "pareto_front",
    "reference_point",
    "register_sampler",
    "sample",
    "sample_logit",
    "sample_random",
    "sample_stratified",
    "select_under_budget",
]
