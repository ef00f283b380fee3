"""Complexity-aware fair supernet training (I2, after DyNAS, CVPR 2025).

Three knobs of the weight step, each a name in a :class:`~linas._registry.Registry` (unknown
names list the menu and the closest match):

* **train mode** (``soft`` | ``single-path`` | ``sandwich``): ``soft`` is the baseline (soft
  Gumbel mixing in the soft epochs, hard straight-through after); ``single-path`` trains exactly
  one sampled architecture per weight step in every phase, drawn ``uniform`` or by a hard Gumbel
  sample of the architecture logits (``gumbel``); only that path is computed. ``sandwich``
  (:mod:`linas.search.sandwich`) trains, in every phase, the largest subnet with CE, the
  smallest and ``n`` sampled ones (2) with in-place distillation to it, and takes one step.
* **CaLR** (``none`` | ``seed`` | ``dynas``), a factor on the learning rate of each step:
  ``seed`` is the plan's ``0.5 + 0.5 * flops / max_flops`` of the sampled subnet (max over
  the space); ``dynas`` is a per-subnet polynomial decay ``(1 - progress) ** p`` whose exponent
  ``p`` maps log #params linearly onto :data:`DYNAS_POWER_RANGE`: the largest subnet of the
  space gets ``p = 0.5`` (decays slowly, keeps a large LR), the smallest ``p = 2.0`` (decays
  fast). ``progress`` runs from 0 (first weight step) towards 1 (after the last).
* **momentum** (``shared`` | ``seed`` | ``dynas``): ``shared`` is one Adam state; ``seed`` keeps
  one Adam state per FLOPs tercile of the space (3 bins); ``dynas`` one per op choice (21) at
  ``split_layer``. Every state optimises the same shared weights; a state exists only for the
  parameters it has stepped (Adam's lazy state), so a candidate of the split layer lives in one
  state only. The default split layer 0 holds 3/4 of the decoder's parameters, which keeps the
  21 states' memory to about 21x the parameters of layers 1-4 (41 M) instead of 21x all.

In soft mode (no single sampled subnet) CaLR and the momentum bin use the step's argmax choices.
Sandwich mode sums the gradients of ``2 + n`` subnets that share weights into one step, so a
per-subnet learning rate or optimizer state has no meaning there: :func:`check_fair_options`
refuses it with CaLR other than ``none`` or momentum other than ``shared``.
Every strategy's weight step goes through :class:`FairTraining`
(:meth:`linas.search.base.SupernetSearch._weight_step`): the bi-level search samples from its
logits, the hypernetwork strategy from the hypernet's logits for a random device and preference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from linas._errors import ConfigError
from linas._registry import Registry
from linas.search.complexity import ComplexityTable, complexity_table
from linas.search.gumbel import gumbel_softmax
from linas.space import NUM_CHOICES, NUM_LAYERS

DYNAS_POWER_RANGE: tuple[float, float] = (0.5, 2.0)  # (largest subnet, smallest subnet)

# (complexity table, choices (5,), training progress in [0, 1)) -> factor on the lr
CalrRule = Callable[[ComplexityTable, np.ndarray, float], float]


@dataclass(frozen=True)
class MomentumRule:
    """A momentum mode: how many optimizer states, and which one trains a subnet."""

    n_states: int
    # (complexity table, choices (5,), split layer) -> state index in 0..n_states-1
    state_of: Callable[[ComplexityTable, np.ndarray, int], int]
    # state k only ever trains choice k of the split layer (single-path steps): its Adam
    # moments, created lazily, never cover the split layer's other candidates
    pins_split_choice: bool = False


@dataclass(frozen=True)
class PathSampler:
    """A single-path sampler: whether it reads the architecture logits, and its draw."""

    needs_logits: bool
    # (logits (5, 21) or None, Gumbel temperature, generator) -> one choice per layer
    draw: Callable[[torch.Tensor | None, float, torch.Generator], list[int]]


TRAIN_MODES: Registry[str] = Registry("train mode")
TRAIN_MODES.add("soft", "soft Gumbel mixing in the soft epochs, hard straight-through after")
TRAIN_MODES.add("single-path", "one sampled architecture per weight step in every phase")
TRAIN_MODES.add("sandwich", "largest (CE), smallest and n sampled subnets (KD to the largest) "
                "per weight step, one optimizer step")

CALR_MODES: Registry[CalrRule] = Registry("CaLR mode")
PATH_SAMPLERS: Registry[PathSampler] = Registry("path sampler")
MOMENTUM_MODES: Registry[MomentumRule] = Registry("momentum mode")


def check_fair_options(train_mode: str, path_sampler: str, calr: str, momentum: str,
                       split_layer: int) -> None:
    """Validate the fair-training options of a search config.

    Raises:
        ConfigError: an unknown name (listing the menu and the closest match), a split
            layer outside 0..4, or ``sandwich`` with per-subnet CaLR or momentum.
    """
    for registry, name in ((TRAIN_MODES, train_mode), (PATH_SAMPLERS, path_sampler),
                           (CALR_MODES, calr), (MOMENTUM_MODES, momentum)):
        registry.check(name)
    if not 0 <= split_layer < NUM_LAYERS:
        raise ConfigError(f"split layer {split_layer}: expected 0..{NUM_LAYERS - 1}")
    if train_mode == "sandwich":
        check_sandwich_options(calr, momentum)


def check_sandwich_options(calr: str, momentum: str) -> None:
    """Refuse per-subnet CaLR or momentum with train mode ``sandwich``: its one step sums
    the gradients of several subnets that share weights, so no single subnet's learning rate
    or optimizer state applies.

    Raises:
        ConfigError: ``calr`` other than ``none`` or ``momentum`` other than ``shared``.
    """
    why = "train_mode sandwich takes one optimizer step for several subnets"
    if calr != "none":
        raise ConfigError(f"search.calr = {calr}: {why}, a per-subnet learning rate does not "
                          "apply; set search.calr: none or another train_mode")
    if momentum != "shared":
        raise ConfigError(f"search.momentum = {momentum}: {why}, a per-subnet optimizer state "
                          "does not apply; set search.momentum: shared or another train_mode")


def calr_seed_factor(flops: float | np.ndarray, max_flops: float) -> float | np.ndarray:
    """The plan's CaLR factor ``0.5 + 0.5 * flops / max_flops`` (in [0.5, 1])."""
    return 0.5 + 0.5 * np.asarray(flops, dtype=np.float64) / max_flops


def dynas_power(params: float | np.ndarray, params_range: tuple[float, float],
                power_range: tuple[float, float] = DYNAS_POWER_RANGE) -> float | np.ndarray:
    """Polynomial-decay exponent of a subnet from its #params.

    ``u = (log P - log P_min) / (log P_max - log P_min)`` in [0, 1] (clipped), then
    ``p = power_range[1] + u * (power_range[0] - power_range[1])``: the biggest subnet gets
    ``power_range[0]`` (slow decay), the smallest ``power_range[1]`` (fast decay).
    """
    lo, hi = np.log(params_range[0]), np.log(params_range[1])
    u = np.clip((np.log(np.asarray(params, dtype=np.float64)) - lo) / (hi - lo), 0.0, 1.0)
    return power_range[1] + u * (power_range[0] - power_range[1])


def dynas_factor(params: float | np.ndarray, params_range: tuple[float, float],
                 progress: float) -> float | np.ndarray:
    """CaLR ``dynas`` factor ``(1 - progress) ** p(params)``, progress in [0, 1)."""
    remaining = max(0.0, 1.0 - float(progress))
    return remaining ** dynas_power(params, params_range)


def tercile_bin(flops: float, terciles: np.ndarray) -> int:
    """Complexity bin 0/1/2 of a subnet by the space's two FLOPs terciles."""
    return int(np.searchsorted(terciles, flops, side="right"))


def _uniform_path(logits: torch.Tensor | None, tau: float,
                  generator: torch.Generator) -> list[int]:
    return torch.randint(0, NUM_CHOICES, (NUM_LAYERS,), generator=generator).tolist()


def _gumbel_path(logits: torch.Tensor | None, tau: float,
                 generator: torch.Generator) -> list[int]:
    if logits is None:
        raise ValueError("the gumbel path sampler needs architecture logits (5, 21)")
    return gumbel_softmax(logits.detach(), tau, True, generator)[1]


CALR_MODES.add("none", lambda table, c, progress: 1.0)
CALR_MODES.add("seed", lambda table, c, progress: float(
    calr_seed_factor(table.flops_of(c), table.max_flops)))
CALR_MODES.add("dynas", lambda table, c, progress: float(
    dynas_factor(table.params_of(c), table.params_range, progress)))
PATH_SAMPLERS.add("uniform", PathSampler(False, _uniform_path))
PATH_SAMPLERS.add("gumbel", PathSampler(True, _gumbel_path))
MOMENTUM_MODES.add("shared", MomentumRule(1, lambda table, c, split: 0))
MOMENTUM_MODES.add("seed", MomentumRule(3, lambda table, c, split: tercile_bin(
    float(table.flops_of(c)), table.flops_terciles)))
MOMENTUM_MODES.add("dynas", MomentumRule(NUM_CHOICES, lambda table, c, split: int(c[split]),
                                           pins_split_choice=True))


class FairTraining:
    """Sampling, learning-rate factor and optimizer-state selection of the weight step.

    Args:
        params: the shared trainable weights.
        lr: base learning rate.
        weight_decay: Adam weight decay.
        calr: CaLR mode, a name of :data:`CALR_MODES`.
        momentum: momentum mode, a name of :data:`MOMENTUM_MODES`.
        split_layer: the layer whose op choice picks the state in ``dynas`` momentum.
        path_sampler: single-path sampler, a name of :data:`PATH_SAMPLERS`.
        table: complexity table (default: :func:`complexity_table` at 128x128; ratios,
            terciles and #params do not depend on the size).

    Raises:
        ConfigError: an unknown mode or split layer.
    """

    def __init__(self, params: Sequence[torch.nn.Parameter], lr: float, weight_decay: float,
                 calr: str = "none", momentum: str = "shared", split_layer: int = 0,
                 path_sampler: str = "uniform", table: ComplexityTable | None = None) -> None:
        check_fair_options("soft", path_sampler, calr, momentum, split_layer)
        self.lr, self.calr, self.momentum = lr, calr, momentum
        self.split_layer, self.path_sampler = split_layer, path_sampler
        self.table = table if table is not None else complexity_table()
        self._calr, self._momentum = CALR_MODES.get(calr), MOMENTUM_MODES.get(momentum)
        self._sampler = PATH_SAMPLERS.get(path_sampler)
        plist = list(params)
        self.optimizers = [torch.optim.Adam(plist, lr=lr, weight_decay=weight_decay)
                           for _ in range(self._momentum.n_states)]

    @property
    def samples_from_logits(self) -> bool:
        """Whether the single-path sampler reads architecture logits (``gumbel``)."""
        return self._sampler.needs_logits

    def sample_path(self, logits: torch.Tensor | None, tau: float, generator: torch.Generator,
                    uniform: bool) -> list[int]:
        """One architecture's choices: uniform (warm-up, or the ``uniform`` sampler) or the
        argmax of a hard Gumbel sample of ``logits`` (5, 21).

        Raises:
            ValueError: ``logits`` is None while the sampler needs them.
        """
        sampler = PATH_SAMPLERS.get("uniform") if uniform else self._sampler
        return sampler.draw(logits, tau, generator)

    def state_index(self, choices: Sequence[int]) -> int:
        """Which optimizer state trains ``choices``: 0 (shared), tercile bin, or split op."""
        return self._momentum.state_of(self.table, np.asarray(choices), self.split_layer)

    def lr_factor(self, choices: Sequence[int], progress: float) -> float:
        """CaLR factor of ``choices`` at training progress in [0, 1)."""
        return self._calr(self.table, np.asarray(choices), progress)

    def optimizer_for(self, choices: Sequence[int], progress: float) -> torch.optim.Optimizer:
        """The optimizer state for ``choices``, its learning rate set by CaLR."""
        opt = self.optimizers[self.state_index(choices)]
        if self.calr != "none":  # "none" leaves the lr untouched (baseline stays bit-identical)
            for group in opt.param_groups:
                group["lr"] = self.lr * self.lr_factor(choices, progress)
        return opt

    def state_dicts(self) -> list[dict[str, Any]]:
        """Every optimizer state, index-aligned with :attr:`optimizers`."""
        return [o.state_dict() for o in self.optimizers]

    def load_state_dicts(self, states: Sequence[dict[str, Any]], where: str) -> None:
        """Restore :meth:`state_dicts`.

        Raises:
            ConfigError: the number of states does not match the momentum mode.
        """
        if len(states) != len(self.optimizers):
            raise ConfigError(f"checkpoint {where}: holds {len(states)} weight-optimizer "
                              f"state(s), momentum '{self.momentum}' needs "
                              f"{len(self.optimizers)}; resume with the checkpoint's "
                              "--momentum or start a new run directory")
        for opt, state in zip(self.optimizers, states, strict=True):
            check_optimizer_state(opt, state, where)
            opt.load_state_dict(state)


def check_optimizer_state(opt: torch.optim.Optimizer, state: Any, where: str) -> None:
    """Raise unless ``state`` (an optimizer state dict read from a checkpoint) has ``opt``'s
    parameter groups and per-parameter tensors of its parameters' shapes.

    Raises:
        ConfigError: naming the checkpoint and the first mismatch.
    """
    fix = "delete it (or rerun with --restart) to search from the start"
    try:
        groups, per_param = state["param_groups"], state["state"]
        saved = [i for g in groups for i in g["params"]]
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"checkpoint {where}: an optimizer state lacks {exc}; {fix}") from None
    params = [p for g in opt.param_groups for p in g["params"]]
    if len(groups) != len(opt.param_groups) or len(saved) != len(params):
        raise ConfigError(f"checkpoint {where}: an optimizer state holds {len(saved)} "
                          f"parameters in {len(groups)} group(s), this search has {len(params)} "
                          f"in {len(opt.param_groups)}; {fix}")
    position = {index: k for k, index in enumerate(saved)}
    for index, entry in per_param.items():
        if index not in position or not isinstance(entry, dict):
            raise ConfigError(f"checkpoint {where}: an optimizer state names parameter "
                              f"{index!r}, which it does not list; {fix}")
        shape = params[position[index]].shape
        for name, value in entry.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != shape:
                raise ConfigError(f"checkpoint {where}: optimizer entry {name} of parameter "
                                  f"{index} has shape {list(value.shape)}, the parameter "
                                  f"{list(shape)}; {fix}")
