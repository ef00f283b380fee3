"""Search strategies: the baseline bi-level LINAS search, losses, Gumbel sampling."""

from linas.search.bilevel import BilevelSearch, DeviceTarget, SearchConfig, SearchState
from linas.search.evaluate import evaluate_choices
from linas.search.features import FeatureSet, cache_features
from linas.search.gumbel import gumbel_softmax, temperature
from linas.search.losses import latency_penalty, segmentation_ce

__all__ = [
    "BilevelSearch",
    "DeviceTarget",
    "FeatureSet",
    "SearchConfig",
    "SearchState",
    "cache_features",
    "evaluate_choices",
    "gumbel_softmax",
    "latency_penalty",
    "segmentation_ce",
    "temperature",
]
