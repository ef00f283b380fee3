"""Search strategies: the baseline bi-level LINAS search, the preference-conditioned
hypernetwork (I1), complexity-aware fair training (I2), losses, Gumbel sampling."""

from linas.search.bilevel import BilevelSearch, DeviceTarget, SearchConfig, SearchState
from linas.search.complexity import ComplexityTable, complexity_table
from linas.search.evaluate import evaluate_choices
from linas.search.fair import FairTraining
from linas.search.gumbel import gumbel_softmax, temperature
from linas.search.hypernet import (
    ArchHypernet,
    DeviceEmbedder,
    HypernetConfig,
    PreferenceSampler,
    preference_grid,
)
from linas.search.hypernet_search import (
    HypernetDevice,
    HypernetSearch,
    HypernetState,
    sweep_architectures,
)
from linas.search.losses import latency_penalty, segmentation_ce

__all__ = [
    "ArchHypernet",
    "BilevelSearch",
    "ComplexityTable",
    "DeviceEmbedder",
    "DeviceTarget",
    "FairTraining",
    "HypernetConfig",
    "HypernetDevice",
    "HypernetSearch",
    "HypernetState",
    "PreferenceSampler",
    "SearchConfig",
    "SearchState",
    "complexity_table",
    "evaluate_choices",
    "gumbel_softmax",
    "latency_penalty",
    "preference_grid",
    "segmentation_ce",
    "sweep_architectures",
    "temperature",
]
