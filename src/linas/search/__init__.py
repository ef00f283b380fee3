"""Search strategies over the supernet: one base class (:class:`SupernetSearch`: epoch loop,
I2 fair weight step, checkpointed :meth:`~SupernetSearch.fit`) with the baseline bi-level
LINAS search and the preference-conditioned hypernetwork (I1) as registered subclasses;
losses and Gumbel sampling."""

from linas.search.base import CHECKPOINT_EVERY_S, SEARCH_STRATEGIES, SearchResult, SupernetSearch
from linas.search.bilevel import BilevelSearch, DeviceTarget, SearchState
from linas.search.complexity import ComplexityTable, complexity_table
from linas.search.config import SearchConfig, epoch_phase
from linas.search.evaluate import evaluate_choices
from linas.search.fair import (
    CALR_MODES,
    MOMENTUM_MODES,
    PATH_SAMPLERS,
    TRAIN_MODES,
    FairTraining,
    check_fair_options,
)
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
    "CALR_MODES",
    "CHECKPOINT_EVERY_S",
    "MOMENTUM_MODES",
    "PATH_SAMPLERS",
    "SEARCH_STRATEGIES",
    "TRAIN_MODES",
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
    "SearchResult",
    "SearchState",
    "SupernetSearch",
    "check_fair_options",
    "complexity_table",
    "epoch_phase",
    "evaluate_choices",
    "gumbel_softmax",
    "latency_penalty",
    "preference_grid",
    "segmentation_ce",
    "sweep_architectures",
    "temperature",
]
