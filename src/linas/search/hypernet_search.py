"""The hypernetwork search (I1): supernet weights and one hypernetwork for every device.

Same schedule as :class:`linas.search.BilevelSearch` (same ``SearchConfig``: warm-up epochs of
uniform single-path weight steps, then soft and hard Gumbel epochs with the same temperature,
one weight step and one architecture step per train batch), so both strategies get the same
supernet-training budget. What differs is where architectures come from:

* weight step: the architecture is drawn from the hypernet's logits for a random training
  device and a Dirichlet preference (uniform in warm-up), then trained through
  :class:`~linas.search.fair.FairTraining` as the baseline's is: single-path mode, CaLR and
  separated momentum apply here too (the default ``soft``/``none``/``shared`` is one plain
  Adam state);
* architecture step: in the hard epochs the arch-val batch is split among ``pairs_per_step``
  random (device, preference) pairs, each with its own Gumbel sample (one path each, so about
  the cost of one path over the batch), and the hypernetwork gets the mean of their
  :func:`~linas.search.hypernet.preference_gradient` (unit CE direction plus the gradients of
  :func:`~linas.search.hypernet.hypernet_objective`'s latency-target and budget penalties).
  Soft epochs compute every candidate per forward, so they use one pair per step and cost
  what the baseline's soft step costs.

A device whose fastest architecture is already over its budget has no feasible point: its
budget term is dropped (``budget_feasible`` False) rather than let an unsatisfiable
constraint dominate the shared hypernetwork.

Afterwards :func:`sweep_architectures` turns any device embedding, trained on or not, into
architectures along a sweep of preferences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from linas._errors import ConfigError
from linas._tensors import check_tensors
from linas.compute import CPU, Compute
from linas.latency.model import LUTLatencyModel
from linas.search.base import SEARCH_STRATEGIES, SupernetSearch
from linas.search.checkpoint import FIX as _FIX
from linas.search.config import SearchConfig
from linas.search.gumbel import gumbel_softmax
from linas.search.hypernet import (
    ArchHypernet,
    DeviceEmbedder,
    HypernetConfig,
    PreferenceSampler,
    build_hypernet,
    hypernet_objective,
    latency_prior,
    preference_gradient,
    preference_grid,
    raw_embedding,
)
from linas.search.losses import segmentation_ce
from linas.space import NUM_LAYERS, Arch
from linas.supernet import Supernet


@dataclass
class HypernetDevice:
    """A device as the hypernetwork sees it: LUT model, budget, bounds, raw embedding and
    latency prior."""

    name: str
    model: LUTLatencyModel
    budget_ms: float
    bounds: tuple[float, float]
    raw: np.ndarray  # (11,)
    prior: np.ndarray  # (5, 21), see latency_prior

    @property
    def budget_feasible(self) -> bool:
        """Whether the fastest architecture of the space meets the budget."""
        return self.bounds[0] <= self.budget_ms

    @classmethod
    def from_model(cls, name: str, model: LUTLatencyModel, budget_ms: float) -> HypernetDevice:
        """Compute the exact bounds, the raw fingerprint embedding and the prior of ``model``."""
        return cls(name, model, budget_ms, model.bounds(), raw_embedding(model),
                   latency_prior(model.table))


@dataclass
class HypernetState:
    """What the hypernetwork search produced (the hypernet is shared, not copied)."""

    hypernet: ArchHypernet
    embedder: DeviceEmbedder
    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def architectures(self, device: HypernetDevice, config: HypernetConfig,
                      seed: int = 0) -> tuple[np.ndarray, list[float]]:
        """A device's swept architectures, see :func:`sweep_architectures`."""
        return sweep_architectures(self.hypernet, self.embedder(device.raw),
                                   torch.as_tensor(device.prior, dtype=torch.float32), config,
                                   seed)


@SEARCH_STRATEGIES.register("hypernet")
class HypernetSearch(SupernetSearch[HypernetState]):
    """The hypernetwork strategy: one hypernetwork for every device and preference.

    Args:
        supernet: the weight-sharing supernet (encoder frozen, features cached).
        devices: the training devices (a held-out device is simply not among them).
        config: the shared schedule (epochs, batch size, weight lr, temperature, I2, seed).
        hconfig: the hypernetwork's own hyper-parameters.
        ignore_index: label ignored by the loss.

    Raises:
        ValueError: no training device.
    """

    strategy = "hypernet"
    arch_stats = ("ce_val", "latency_norm", "budget_excess")

    def __init__(self, supernet: Supernet, devices: Sequence[HypernetDevice],
                 config: SearchConfig, hconfig: HypernetConfig, ignore_index: int = 255,
                 compute: Compute = CPU) -> None:
        if not devices:
            raise ValueError("the hypernetwork search needs at least one training device")
        if compute.distributed:  # its arch step splits one batch among (device, preference)
            raise ConfigError("search.strategy hypernet runs in one process (its architecture "
                              "step splits each batch among device/preference pairs); use "
                              "search.strategy: bilevel under torchrun, or run without torchrun")
        super().__init__(supernet, config, ignore_index, compute)
        self.devices, self.hcfg = list(devices), hconfig
        self.prefs = PreferenceSampler(hconfig.dirichlet_alpha, config.seed)
        self._set_embedder(DeviceEmbedder.fit(np.stack([d.raw for d in self.devices])))
        self.prior = torch.as_tensor(np.stack([d.prior for d in self.devices]),
                                     dtype=torch.float32)  # (D, 5, 21)
        self.hnet = build_hypernet(hconfig, config.seed)
        self.h_opt = torch.optim.Adam(self.hnet.parameters(), lr=hconfig.lr, betas=(0.5, 0.999))
        self.state = self._make_state(0, [])

    def _set_embedder(self, embedder: DeviceEmbedder) -> None:
        self.embedder = embedder
        self.emb = embedder(np.stack([d.raw for d in self.devices]))  # (D, 11)

    def _draw(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` random training-device indices (n,) and Dirichlet preferences (n, 2)."""
        idx = torch.randint(0, len(self.devices), (n,), generator=self.gen)
        return idx, self.prefs.sample(n)

    @torch.no_grad()
    def _weight_logits(self) -> torch.Tensor:
        """The hypernet's logits (5, 21) for a random training device and preference."""
        idx, pref = self._draw(1)
        return self.hnet(self.emb[idx[0]], pref[0], self.prior[idx[0]])

    def _arch_step(self, feats: list[torch.Tensor], masks: torch.Tensor, share: float,
                   tau: float, hard: bool) -> dict[str, float]:
        """One hypernetwork step on an arch-val batch split among random (device, pref)."""
        k = max(1, min(self.hcfg.pairs_per_step if hard else 1, int(masks.shape[0])))
        idx, prefs = self._draw(k)
        logits = self.hnet(self.emb[idx], prefs, self.prior[idx])  # (k, 5, 21)
        parts = torch.tensor_split(torch.arange(int(masks.shape[0])), k)
        ce_terms, penalty_terms = [], []
        ces, lats, overs = [], [], []
        for j, rows in enumerate(parts):
            dev = self.devices[int(idx[j])]
            weights, choices = gumbel_softmax(logits[j], tau, hard, self.gen)
            sub = [f[rows] for f in feats]
            with self.compute.autocast():
                out = (self.net.decode(sub, weights=weights, choices=choices) if hard
                       else self.net.decode(sub, weights=weights))
                ce = segmentation_ce(out, masks[rows], self.ignore_index).float()
            expected = dev.model.expected(torch.softmax(logits[j], dim=-1))
            budget = dev.budget_ms if dev.budget_feasible else None
            loss, lat = hypernet_objective(ce, expected, dev.bounds, budget, prefs[j],
                                           self.hcfg.lambda_budget, self.hcfg.lambda_target)
            ce_terms.append(ce)
            penalty_terms.append(loss - ce)
            ces.append(float(ce.detach()))
            lats.append(float(lat.detach()))
            overs.append(max(float(expected.detach()) - dev.budget_ms, 0.0) / dev.budget_ms)
        self._step_hypernet(logits, ce_terms, penalty_terms)
        return {"ce_val": float(np.mean(ces)), "latency_norm": float(np.mean(lats)),
                "budget_excess": float(np.mean(overs))}

    def _step_hypernet(self, logits: torch.Tensor, ce_terms: list[torch.Tensor],
                       penalty_terms: list[torch.Tensor]) -> None:
        """Step the hypernetwork along the mean preference gradient of the k pairs."""
        k = int(logits.shape[0])
        # per-objective logit gradients (each pair's terms depend only on its own logits row)
        g_acc, g_pen = (torch.autograd.grad(torch.stack(t).sum(), logits, retain_graph=True)[0]
                        for t in (ce_terms, penalty_terms))
        mixed = torch.stack([preference_gradient(g_acc[j], g_pen[j]) for j in range(k)]) / k
        params = list(self.hnet.parameters())
        # grads for the hypernetwork only: the supernet weights are not trained on arch-val
        grads = torch.autograd.grad(logits, params, grad_outputs=mixed)
        self.h_opt.zero_grad(set_to_none=True)
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        self.h_opt.step()

    @torch.no_grad()
    def _epoch_stats(self) -> dict[str, Any]:
        """Per training device: argmax latency (ms) at w_lat = 0, 0.5 and 1."""
        prefs = preference_grid(3)
        out: dict[str, list[float]] = {}
        for d, dev in enumerate(self.devices):
            logits = self.hnet(self.emb[d].expand(3, -1), prefs,
                               self.prior[d].expand(3, -1, -1))  # (3, 5, 21)
            out[dev.name] = dev.model.predict(logits.argmax(-1).numpy()).tolist()
        return {"argmax_latency_ms_at_wlat_0_05_1": out,
                "prior_weight": [round(float(b), 4) for b in self.hnet.prior_weight]}

    def _make_state(self, epoch: int, history: list[dict[str, Any]]) -> HypernetState:
        return HypernetState(self.hnet, self.embedder, epoch, history)

    def _strategy_config(self) -> dict[str, Any]:
        return {"hypernet": asdict(self.hcfg),
                "devices": [[d.name, float(d.budget_ms)] for d in self.devices]}

    def _strategy_state(self) -> dict[str, Any]:
        return {"hypernet": self.hnet.state_dict(), "h_opt": self.h_opt.state_dict(),
                "pref_rng": self.prefs.get_state(),
                "embed_mean": torch.as_tensor(self.embedder.mean),
                "embed_std": torch.as_tensor(self.embedder.std)}

    def _load_strategy_state(self, blob: dict[str, Any], where: str) -> None:
        check_tensors(self.hnet.state_dict(), blob["hypernet"], f"checkpoint {where}", _FIX)
        self.hnet.load_state_dict(blob["hypernet"])
        self.h_opt.load_state_dict(blob["h_opt"])
        self.prefs.set_state(blob["pref_rng"])
        # the embedding the hypernet was trained with (re-measured LUTs would shift it)
        self._set_embedder(DeviceEmbedder(blob["embed_mean"].numpy(), blob["embed_std"].numpy()))


@torch.no_grad()
def sweep_architectures(hypernet: ArchHypernet, embedding: torch.Tensor, prior: torch.Tensor,
                        config: HypernetConfig, seed: int = 0
                        ) -> tuple[np.ndarray, list[float]]:
    """Distinct architectures of one device along a preference sweep.

    For each of ``config.sweep_points`` preferences (w_lat from 0 to 1) the argmax
    architecture, then ``config.sweep_samples`` Gumbel samples at ``config.sweep_tau`` (seeded
    by ``seed``); duplicates are dropped, first occurrence kept.

    Args:
        hypernet: the trained hypernetwork.
        embedding: the device's normalised embedding (11,).
        prior: the device's latency prior (5, 21), see :func:`latency_prior`.
        config: sweep size, samples per preference and sampling temperature.
        seed: seed of the Gumbel samples.

    Returns:
        (choices (n, 5) int64, the w_lat that first produced each row).
    """
    prefs = preference_grid(config.sweep_points)
    logits = hypernet(embedding.expand(len(prefs), -1), prefs,
                      prior.expand(len(prefs), -1, -1))  # (P, 5, 21)
    gen = torch.Generator().manual_seed(seed)
    rows: list[tuple[int, ...]] = []
    w_lat: list[float] = []
    for p in range(len(prefs)):
        draws = [logits[p].argmax(-1).tolist()]
        draws += [gumbel_softmax(logits[p], config.sweep_tau, True, gen)[1]
                  for _ in range(config.sweep_samples)]
        for choices in draws:
            key = tuple(int(c) for c in choices)
            if key not in rows:
                rows.append(key)
                w_lat.append(float(prefs[p, 1]))
    return np.asarray(rows, dtype=np.int64).reshape(-1, NUM_LAYERS), w_lat


def arch_strings(choices: np.ndarray) -> list[str]:
    """Canonical architecture strings of choice rows (n, 5)."""
    return [str(Arch(tuple(int(c) for c in row))) for row in choices]
