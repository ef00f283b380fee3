"""The shared schedule and options of every search strategy (one :class:`SearchConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

from linas.search.fair import check_fair_options
from linas.search.gumbel import temperature


@dataclass(frozen=True)
class SearchConfig:
    """Hyper-parameters of the supernet search (all recorded in the run's config).

    Raises:
        ConfigError: an unknown fair-training option (see :func:`check_fair_options`).
    """

    warmup_epochs: int = 6
    search_epochs: int = 8
    soft_epochs: int = 1
    batch_size: int = 16
    lr_weights: float = 2e-3
    lr_arch: float = 3e-3
    weight_decay: float = 1e-4
    lambda_latency: float = 1.0
    tau_start: float = 5.0
    tau_end: float = 0.5
    seed: int = 0
    # I2 fair training (linas.search.fair), for every strategy; the defaults keep the baseline
    train_mode: str = "soft"  # soft | single-path
    path_sampler: str = "uniform"  # uniform | gumbel (single-path mode, after warm-up)
    calr: str = "none"  # none | seed | dynas
    momentum: str = "shared"  # shared | seed | dynas
    split_layer: int = 0  # layer whose op choice picks the state of dynas momentum

    def __post_init__(self) -> None:
        check_fair_options(self.train_mode, self.path_sampler, self.calr, self.momentum,
                           self.split_layer)


def epoch_phase(epoch: int, cfg: SearchConfig) -> tuple[bool, float, bool]:
    """(warm-up?, Gumbel temperature, hard sampling?) of ``epoch`` under ``cfg``'s schedule,
    shared by every search strategy so their supernet-training budgets match."""
    s_epoch = epoch - cfg.warmup_epochs
    tau = temperature(max(s_epoch, 0), cfg.search_epochs, cfg.tau_start, cfg.tau_end)
    return epoch < cfg.warmup_epochs, tau, s_epoch >= cfg.soft_epochs
