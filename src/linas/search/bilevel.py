"""Baseline LINAS search: bi-level alternation with Gumbel-softmax and a latency penalty.

Each step trains the supernet weights on a train batch (architecture fixed by a sample of the
logits), then the architecture logits on an arch-val batch with
``CE + lambda * sum_d relu(E[latency_d] - target_d) / target_d``. Epochs before
``warmup_epochs`` train weights only on uniformly sampled single paths; the first
``soft_epochs`` of the search use soft Gumbel-softmax (every candidate computed), the rest
hard straight-through samples (one path computed). The temperature anneals exponentially.
The weight step's sampling, learning rate and optimizer state come from
:class:`~linas.search.fair.FairTraining` (I2; the defaults reproduce the baseline).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from linas.latency.model import LUTLatencyModel
from linas.search.fair import FairTraining, check_fair_options
from linas.data.features import FeatureSet
from linas.search.gumbel import gumbel_softmax, temperature
from linas.search.losses import latency_penalty, segmentation_ce
from linas.space import NUM_CHOICES, NUM_LAYERS, Arch
from linas.supernet import Supernet


@dataclass(frozen=True)
class SearchConfig:
    """Hyper-parameters of the bi-level search (all recorded in the run's config)."""

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
    # I2 fair training (linas.search.fair); the defaults keep the baseline behaviour
    train_mode: str = "soft"  # soft | single-path
    path_sampler: str = "uniform"  # uniform | gumbel (single-path mode, after warm-up)
    calr: str = "none"  # none | seed | dynas
    momentum: str = "shared"  # shared | seed | dynas
    split_layer: int = 0  # layer whose op choice picks the state of dynas momentum

    def __post_init__(self) -> None:
        check_fair_options(self.train_mode, self.path_sampler, self.calr, self.momentum,
                           self.split_layer)


@dataclass
class DeviceTarget:
    """One device of the search: its latency model and latency target in ms."""

    name: str
    model: LUTLatencyModel
    target_ms: float


@dataclass
class SearchState:
    """What the search produced (and what a checkpoint holds)."""

    logits: torch.Tensor  # (5, 21)
    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def best_arch(self) -> Arch:
        return Arch(tuple(int(i) for i in self.logits.argmax(dim=-1)))


def epoch_phase(epoch: int, cfg: SearchConfig) -> tuple[bool, float, bool]:
    """(warm-up?, Gumbel temperature, hard sampling?) of ``epoch`` under ``cfg``'s schedule,
    shared by every search strategy so their supernet-training budgets match."""
    s_epoch = epoch - cfg.warmup_epochs
    tau = temperature(max(s_epoch, 0), cfg.search_epochs, cfg.tau_start, cfg.tau_end)
    return epoch < cfg.warmup_epochs, tau, s_epoch >= cfg.soft_epochs


class BilevelSearch:
    """Driver of the baseline search; each step is a named method."""

    def __init__(self, supernet: Supernet, devices: Sequence[DeviceTarget], config: SearchConfig,
                 ignore_index: int = 255) -> None:
        self.net, self.devices, self.cfg = supernet, list(devices), config
        self.ignore_index = ignore_index
        self.gen = torch.Generator().manual_seed(config.seed)
        self.logits = torch.zeros(NUM_LAYERS, NUM_CHOICES, requires_grad=True)
        params = [p for p in supernet.parameters() if p.requires_grad]
        self.fair = FairTraining(params, config.lr_weights, config.weight_decay, config.calr,
                                 config.momentum, config.split_layer, config.path_sampler)
        self.w_opt = self.fair.optimizers[0]  # the shared state (the only one by default)
        self._progress = 0.0  # fraction of all weight steps done, for CaLR 'dynas'
        self.a_opt = torch.optim.Adam([self.logits], lr=config.lr_arch, betas=(0.5, 0.999))
        self.state = SearchState(self.logits.detach())

    @property
    def total_epochs(self) -> int:
        return self.cfg.warmup_epochs + self.cfg.search_epochs

    def run(self, train: FeatureSet, arch_val: FeatureSet,
            on_epoch: Callable[[SearchState], None] | None = None,
            on_step: Callable[[], None] | None = None) -> SearchState:
        """Train from ``self.state.epoch`` to the end; ``on_epoch`` checkpoints."""
        for epoch in range(self.state.epoch, self.total_epochs):
            stats = self._epoch(epoch, train, arch_val, on_step)
            self.state = SearchState(self.logits.detach().clone(), epoch + 1,
                                     [*self.state.history, stats])
            if on_epoch is not None:
                on_epoch(self.state)
        return self.state

    def steps_per_epoch(self, train: FeatureSet) -> int:
        return -(-len(train) // self.cfg.batch_size)

    def _epoch(self, epoch: int, train: FeatureSet, arch_val: FeatureSet,
               on_step: Callable[[], None] | None) -> dict[str, Any]:
        warm, tau, hard = epoch_phase(epoch, self.cfg)
        self.net.train()
        sums = {"ce_train": 0.0, "ce_val": 0.0, "penalty": 0.0}
        val_iter = iter(arch_val.batches(self.cfg.batch_size, self.gen))
        n, per_epoch = 0, self.steps_per_epoch(train)
        for feats, masks in train.batches(self.cfg.batch_size, self.gen):
            self._progress = (epoch + n / per_epoch) / self.total_epochs
            sums["ce_train"] += self._weight_step(feats, masks, warm, tau, hard)
            if not warm:
                try:
                    vf, vm = next(val_iter)
                except StopIteration:
                    val_iter = iter(arch_val.batches(self.cfg.batch_size, self.gen))
                    vf, vm = next(val_iter)
                ce, pen = self._arch_step(vf, vm, tau, hard)
                sums["ce_val"] += ce
                sums["penalty"] += pen
            n += 1
            if on_step is not None:
                on_step()
        means = {k: v / max(n, 1) for k, v in sums.items()}
        return self._epoch_stats(epoch, warm, tau, hard, means)

    def _weight_step(self, feats: list[torch.Tensor], masks: torch.Tensor, warm: bool,
                     tau: float, hard: bool) -> float:
        """One step on the supernet weights with the architecture held fixed."""
        choices, out = self._weight_forward(feats, warm, tau, hard)
        loss = segmentation_ce(out, masks, self.ignore_index)
        opt = self.fair.optimizer_for(choices, self._progress)  # CaLR lr, momentum state
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    def _weight_forward(self, feats: list[torch.Tensor], warm: bool, tau: float,
                        hard: bool) -> tuple[list[int], torch.Tensor]:
        """The sampled choices of a weight step and the decoder's logits for them."""
        if warm or self.cfg.train_mode == "single-path":
            # warm-up: uniform single path, every candidate trained and none favoured
            choices = self.fair.sample_path(self.logits, tau, self.gen, uniform=warm)
            return choices, self.net.decode(feats, choices=choices)
        weights, choices = gumbel_softmax(self.logits.detach(), tau, hard, self.gen)
        out = (self.net.decode(feats, choices=choices) if hard
               else self.net.decode(feats, weights=weights))
        return choices, out

    def _arch_step(self, feats: list[torch.Tensor], masks: torch.Tensor, tau: float,
                   hard: bool) -> tuple[float, float]:
        """One step on the architecture logits: CE on arch-val + latency penalty."""
        weights, choices = gumbel_softmax(self.logits, tau, hard, self.gen)
        out = (self.net.decode(feats, weights=weights, choices=choices) if hard
               else self.net.decode(feats, weights=weights))
        ce = segmentation_ce(out, masks, self.ignore_index)
        probs = torch.softmax(self.logits, dim=-1)
        penalty, _ = latency_penalty(probs, [d.model for d in self.devices],
                                     [d.target_ms for d in self.devices])
        loss = ce + self.cfg.lambda_latency * penalty
        # grads for the logits only: the weights' grads are not needed on this split
        (grad,) = torch.autograd.grad(loss, [self.logits])
        self.a_opt.zero_grad(set_to_none=True)
        self.logits.grad = grad
        self.a_opt.step()
        return float(ce.detach()), float(penalty.detach())

    def _epoch_stats(self, epoch: int, warm: bool, tau: float, hard: bool,
                     means: dict[str, float]) -> dict[str, Any]:
        probs = torch.softmax(self.logits.detach(), dim=-1)
        _, expected = latency_penalty(probs, [d.model for d in self.devices],
                                      [d.target_ms for d in self.devices])
        return {"epoch": epoch, "phase": "warmup" if warm else ("hard" if hard else "soft"),
                "tau": tau, **means,
                "expected_latency_ms": {d.name: e for d, e in zip(self.devices, expected,
                                                                   strict=True)},
                "argmax_arch": str(Arch(tuple(int(i) for i in probs.argmax(-1))))}

    def save(self, path: Path) -> None:
        """Checkpoint weights, logits, optimizer states and RNG (atomic)."""
        blob = {"supernet": {k: v for k, v in self.net.state_dict().items()
                             if not k.startswith("encoder.")},
                "logits": self.logits.detach(), "w_opt": self.w_opt.state_dict(),
                "a_opt": self.a_opt.state_dict(), "epoch": self.state.epoch,
                "rng": self.gen.get_state(), "config": asdict(self.cfg)}
        if len(self.fair.optimizers) > 1:  # separated momentum: the further states
            blob["w_opt_bank"] = self.fair.state_dicts()[1:]
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(blob, tmp)
        tmp.replace(path)

    def load(self, path: Path, history: list[dict[str, Any]]) -> None:
        """Resume from :meth:`save` (loaded with ``weights_only=True``)."""
        blob = torch.load(path, map_location="cpu", weights_only=True)
        self.net.load_state_dict(blob["supernet"], strict=False)
        with torch.no_grad():
            self.logits.copy_(blob["logits"])
        self.fair.load_state_dicts([blob["w_opt"], *blob.get("w_opt_bank", [])], str(path))
        self.a_opt.load_state_dict(blob["a_opt"])
        self.gen.set_state(blob["rng"])
        self.state = SearchState(self.logits.detach().clone(), int(blob["epoch"]), history)
