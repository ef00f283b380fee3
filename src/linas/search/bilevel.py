"""Baseline LINAS search: bi-level alternation with Gumbel-softmax and a latency penalty.

Each step trains the supernet weights on a train batch (architecture fixed by a sample of the
logits), then the architecture logits on an arch-val batch with
``CE + lambda * sum_d relu(E[latency_d] - target_d) / target_d``. Epochs before
``warmup_epochs`` train weights only on uniformly sampled single paths; the first
``soft_epochs`` of the search use soft Gumbel-softmax (every candidate computed), the rest
hard straight-through samples (one path computed). The temperature anneals exponentially.
The loop, the weight step (through :class:`~linas.search.fair.FairTraining`, I2; the defaults
reproduce the baseline) and the checkpoint are :class:`~linas.search.base.SupernetSearch`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from linas._tensors import check_tensors
from linas.compute import CPU, Compute
from linas.latency.model import LUTLatencyModel
from linas.search.base import SEARCH_STRATEGIES, SupernetSearch, shared_ce
from linas.search.checkpoint import FIX as _FIX
from linas.search.config import SearchConfig
from linas.search.gumbel import gumbel_softmax
from linas.search.losses import latency_penalty
from linas.space import NUM_CHOICES, NUM_LAYERS, Arch
from linas.supernet import Supernet


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


@SEARCH_STRATEGIES.register("bilevel")
class BilevelSearch(SupernetSearch[SearchState]):
    """The baseline search: architecture logits shared by every device, each device's
    latency target a penalty.

    Args:
        supernet: the weight-sharing supernet.
        devices: the devices, each with its LUT model and latency target.
        config: schedule, weight step, I2 options and seed.
        ignore_index: label ignored by the loss.
    """

    strategy = "bilevel"
    arch_stats = ("ce_val", "penalty")

    def __init__(self, supernet: Supernet, devices: Sequence[DeviceTarget], config: SearchConfig,
                 ignore_index: int = 255, compute: Compute = CPU) -> None:
        super().__init__(supernet, config, ignore_index, compute)
        self.devices = list(devices)
        self.logits = torch.zeros(NUM_LAYERS, NUM_CHOICES, requires_grad=True)
        self.a_opt = torch.optim.Adam([self.logits], lr=config.lr_arch, betas=(0.5, 0.999))
        self.a_scaler = compute.scaler()
        self.state = self._make_state(0, [])

    def _weight_logits(self) -> torch.Tensor:
        return self.logits.detach()

    def _arch_step(self, feats: list[torch.Tensor], masks: torch.Tensor, share: float,
                   tau: float, hard: bool) -> dict[str, float]:
        """One step on the architecture logits: CE on arch-val + latency penalty (each rank
        its share of the CE and a 1/world part of the penalty, gradients summed)."""
        weights, choices = gumbel_softmax(self.logits, tau, hard, self.gen)
        with self.compute.autocast():
            out = (self.net.decode(feats, weights=weights, choices=choices) if hard
                   else self.net.decode(feats, weights=weights))
            ce = shared_ce(out, masks, share, self.ignore_index)
        probs = torch.softmax(self.logits, dim=-1)
        penalty, _ = latency_penalty(probs, [d.model for d in self.devices],
                                     [d.target_ms for d in self.devices])
        penalty = penalty / self.compute.world
        loss = ce.float() + self.cfg.lambda_latency * penalty
        if self.a_scaler is not None:
            loss = self.a_scaler.scale(loss)
        # grads for the logits only: the weights' grads are not needed on this split
        (grad,) = torch.autograd.grad(loss, [self.logits])
        self.a_opt.zero_grad(set_to_none=True)
        self.logits.grad = grad
        self.compute.sum_grads([self.logits])
        if self.a_scaler is None:
            self.a_opt.step()
        else:
            self.a_scaler.step(self.a_opt)
            self.a_scaler.update()
        return {"ce_val": float(ce.detach()), "penalty": float(penalty.detach())}

    def _epoch_stats(self) -> dict[str, Any]:
        probs = torch.softmax(self.logits.detach(), dim=-1)
        _, expected = latency_penalty(probs, [d.model for d in self.devices],
                                      [d.target_ms for d in self.devices])
        return {"expected_latency_ms": {d.name: e for d, e in zip(self.devices, expected,
                                                                   strict=True)},
                "argmax_arch": str(Arch(tuple(int(i) for i in probs.argmax(-1))))}

    def _make_state(self, epoch: int, history: list[dict[str, Any]]) -> SearchState:
        return SearchState(self.logits.detach().clone(), epoch, history)

    def _strategy_config(self) -> dict[str, Any]:
        return {"devices": [[d.name, float(d.target_ms)] for d in self.devices]}

    def _strategy_state(self) -> dict[str, Any]:
        return {"logits": self.logits.detach().clone(), "a_opt": self.a_opt.state_dict()}

    def _load_strategy_state(self, blob: dict[str, Any], where: str) -> None:
        check_tensors({"logits": self.logits.detach()}, {"logits": blob["logits"]},
                      f"checkpoint {where}", _FIX)
        with torch.no_grad():
            self.logits.copy_(blob["logits"])
        self.a_opt.load_state_dict(blob["a_opt"])
