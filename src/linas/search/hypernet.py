"""The preference-conditioned hypernetwork (I1, after MODNAS) and its pure building blocks.

A small MLP maps (hardware embedding, preference ``[w_acc, w_lat]`` on the simplex) to the
decoder's architecture logits (5, 21). The hardware embedding is the 11-d scale-free latency
fingerprint of a device's decoder LUT (:func:`linas.latency.fingerprint.fingerprint_embedding`),
z-scored with statistics of the training devices so that a held-out device is embedded in the
same coordinates. The logits are::

    logits = MLP(embedding, preference) - w_lat * beta_l * prior_d[l, c]

where ``prior_d`` (:func:`latency_prior`) is the device's own op table, centred per layer and
divided by the table's spread, and ``beta`` (one positive weight per layer) is learned. The
plain MLP (no prior) collapsed in practice: its output bias, which gets the same gradient for
every input, won over the input-dependent weights, and all 21 preferences on all seven devices
gave one architecture. The prior gives the preference and the device a direct, linear path to
the logits (accuracy does not depend on the device, the latency trade-off does), so a sweep of
``w_lat`` walks from the accuracy optimum towards each device's fastest architectures; the MLP
learns corrections.

Objective per (device, preference): an epsilon-constraint scalarisation. The preference picks
a latency *target* between the device's slowest (``w_lat = 0``) and fastest (``w_lat = 1``)
architecture, evenly in log-latency, and the hypernetwork minimises CE subject to it::

    lat_d = log(E[lat_d] / min_d) / log(max_d / min_d)          # in [0, 1] on every device
    loss  = CE + lambda_target * relu(lat_d - (1 - w_lat))
               + lambda_budget * relu(E[lat_d] - budget_d) / budget_d

``min_d``/``max_d`` are the device's exact latency bounds over the whole space; the last term
honours the C3 budget as a hard constraint whatever the preference. The first version used the
weighted sum ``w_acc * CE + w_lat * lat_d``, and collapsed: the straight-through CE gradient
is noisy and 10-100x larger than the latency one, the latency one always points the same way,
so either CE or latency won for every preference at once (one architecture per device for all
21 swept preferences). With a target, the latency pull is off until the target is missed and
then firm, so the preference sets *where* on the latency axis the hypernetwork answers (a
weighted sum also reaches only the convex part of a front; a constraint reaches all of it).
:func:`preference_gradient` adds the CE gradient scaled to unit norm (its scale depends on
the data, not on the preference) to the two penalties' gradients.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from linas.latency.fingerprint import fingerprint, fingerprint_embedding
from linas.latency.model import LUTLatencyModel
from linas.space import NUM_CHOICES, NUM_LAYERS

EMBED_DIM = 11  # fingerprint_embedding: 10 centred log-latencies + the mean log-latency
PREF_DIM = 2  # [w_acc, w_lat]
# Floor of a feature's spread across training devices (log-ms units): a feature nearly equal
# on every training device must not blow a new device's value up to hundreds of sigmas.
_STD_FLOOR = 0.1
PRIOR_WEIGHT_INIT = 3.0  # beta at the start: at w_lat = 1 each layer's fastest choices lead


def latency_prior(table: np.ndarray) -> np.ndarray:
    """A device's latency prior (5, 21): op entries standardised within each layer.

    Scale-free (a 100x faster copy of a device has the same prior). Per layer, so that at
    ``w_lat = 1`` every layer leans to its own fastest choices: standardising by the whole
    table's spread (tried first) let one dominant layer (raspberrypi5's Conv7x7 at layer 0)
    flatten every other layer's prior to ~0, and the latency end of the sweep stopped short
    of the fastest architecture.

    Raises:
        ValueError: when ``table`` is not (5, 21) or holds non-finite values.
    """
    t = np.asarray(table, dtype=np.float64)
    if t.shape != (NUM_LAYERS, NUM_CHOICES) or not np.isfinite(t).all():
        raise ValueError(f"latency prior needs a finite (5, 21) table, got {t.shape}")
    centred = t - t.mean(axis=1, keepdims=True)
    return centred / np.maximum(t.std(axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class HypernetConfig:
    """Hyper-parameters of the hypernetwork strategy (the schedule comes from SearchConfig)."""

    hidden: int = 64
    lr: float = 3e-3
    max_logit: float = 4.0
    dirichlet_alpha: float = 1.0
    pairs_per_step: int = 4
    lambda_budget: float = 10.0
    lambda_target: float = 10.0
    sweep_points: int = 21
    sweep_samples: int = 2  # argmax alone gave 1-2 point fronts; 2 samples: 2-6 points
    sweep_tau: float = 1.0


def raw_embedding(model: LUTLatencyModel) -> np.ndarray:
    """A device's un-normalised embedding (11,) from its decoder-only fingerprint.

    The LUT's fixed part (encoder etc., present only in end-to-end LUTs) is left out so that
    end-to-end and decoder-only LUTs are embedded alike, and so are its pair terms: fitted
    end to end, they may hold part of the fixed cost and be negative, and without the fixed
    part a fingerprint latency could then be <= 0 (its log NaN, the hypernetwork's logits
    NaN). The op entries alone are positive.
    """
    decoder_only = LUTLatencyModel(model.lut, use_fixed=False, use_interactions=False)
    return fingerprint_embedding(fingerprint(decoder_only))


@dataclass(frozen=True)
class DeviceEmbedder:
    """Z-scores raw embeddings with the training devices' per-feature mean and spread."""

    mean: np.ndarray  # (11,)
    std: np.ndarray  # (11,)

    @classmethod
    def fit(cls, raw: np.ndarray) -> DeviceEmbedder:
        """Statistics of the training devices' raw embeddings.

        Args:
            raw: raw embeddings, shape (D, 11), D >= 1.

        Returns:
            The embedder; spreads are floored at 0.1 (log-ms).

        Raises:
            ValueError: when ``raw`` is not (D, 11) with D >= 1.
        """
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim != 2 or raw.shape[0] < 1 or raw.shape[1] != EMBED_DIM:
            raise ValueError(f"raw embeddings must be (D, {EMBED_DIM}), got {raw.shape}")
        return cls(raw.mean(axis=0), np.maximum(raw.std(axis=0), _STD_FLOOR))

    def __call__(self, raw: np.ndarray) -> torch.Tensor:
        """Normalised embedding(s), float32 tensor of the input's shape (..., 11)."""
        z = (np.asarray(raw, dtype=np.float64) - self.mean) / self.std
        return torch.as_tensor(z, dtype=torch.float32)


class ArchHypernet(nn.Module):
    """(embedding, preference, latency prior) -> architecture logits (5, 21).

    ``MLP(embedding, preference) - w_lat * beta * prior`` (see the module docstring), the MLP
    part softly bounded to ``(-max_logit, max_logit)``. The MLP's output layer starts at zero,
    so at w_lat = 0 every device starts from uniform logits, as the baseline's architecture
    logits do.

    Args:
        embed_dim: size of the hardware embedding.
        hidden: width of the two hidden layers.
        max_logit: bound of the learned logits.
    """

    def __init__(self, embed_dim: int = EMBED_DIM, hidden: int = 64,
                 max_logit: float = 4.0) -> None:
        super().__init__()
        self.embed_dim, self.max_logit = embed_dim, float(max_logit)
        self.body = nn.Sequential(nn.Linear(embed_dim + PREF_DIM, hidden), nn.ReLU(),
                                  nn.Linear(hidden, hidden), nn.ReLU())
        self.out = nn.Linear(hidden, NUM_LAYERS * NUM_CHOICES)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        # softplus(raw) = PRIOR_WEIGHT_INIT: beta stays positive while learned
        raw = float(np.log(np.expm1(PRIOR_WEIGHT_INIT)))
        self.prior_raw = nn.Parameter(torch.full((NUM_LAYERS,), raw))

    @property
    def prior_weight(self) -> torch.Tensor:
        """beta: the learned per-layer weight of the latency prior (5,), positive."""
        return nn.functional.softplus(self.prior_raw)

    def forward(self, embedding: torch.Tensor, preference: torch.Tensor,
                prior: torch.Tensor) -> torch.Tensor:
        """Logits (B, 5, 21) for (B, E), (B, 2), (B, 5, 21); (5, 21) for unbatched inputs.

        Raises:
            ValueError: when the trailing sizes are not (embed_dim,), (2,) and (5, 21).
        """
        if (embedding.shape[-1] != self.embed_dim or preference.shape[-1] != PREF_DIM
                or tuple(prior.shape[-2:]) != (NUM_LAYERS, NUM_CHOICES)):
            raise ValueError(f"expected embedding (..., {self.embed_dim}), preference "
                             f"(..., {PREF_DIM}) and prior (..., {NUM_LAYERS}, {NUM_CHOICES}), "
                             f"got {tuple(embedding.shape)}, {tuple(preference.shape)} and "
                             f"{tuple(prior.shape)}")
        x = torch.cat([embedding, preference.to(embedding.dtype)], dim=-1)  # (..., E + 2)
        raw = self.out(self.body(x)).unflatten(-1, (NUM_LAYERS, NUM_CHOICES))
        # soft bound: unbounded logits saturated the softmax within an epoch and then no
        # preference or device could move the argmax any more
        learned = self.max_logit * torch.tanh(raw / self.max_logit)
        w_lat = preference[..., 1, None, None].to(learned.dtype)  # (..., 1, 1)
        return learned - w_lat * self.prior_weight[:, None] * prior.to(learned.dtype)

    def probs(self, embedding: torch.Tensor, preference: torch.Tensor,
              prior: torch.Tensor) -> torch.Tensor:
        """Per-layer choice distributions (..., 5, 21): softmax of :meth:`forward`."""
        return torch.softmax(self(embedding, preference, prior), dim=-1)


def build_hypernet(config: HypernetConfig, seed: int) -> ArchHypernet:
    """A hypernetwork whose initial weights depend only on ``seed`` (not the global RNG)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ArchHypernet(hidden=config.hidden, max_logit=config.max_logit)


class PreferenceSampler:
    """Seeded Dirichlet sampler of preferences ``[w_acc, w_lat]``; its state checkpoints.

    Args:
        alpha: Dirichlet concentration (1.0: uniform on the simplex).
        seed: seed of the sampler's own numpy generator.
    """

    def __init__(self, alpha: float, seed: int) -> None:
        if alpha <= 0:
            raise ValueError(f"dirichlet alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)
        self.rng = np.random.default_rng(seed)

    def sample(self, n: int) -> torch.Tensor:
        """``n`` preferences, float32 tensor (n, 2), rows on the simplex."""
        return torch.as_tensor(self.rng.dirichlet([self.alpha] * PREF_DIM, size=n),
                               dtype=torch.float32)

    def get_state(self) -> str:
        """The generator state as a JSON string (loadable with ``weights_only=True``)."""
        return json.dumps(self.rng.bit_generator.state)

    def set_state(self, state: str) -> None:
        self.rng.bit_generator.state = json.loads(state)


def preference_grid(n: int) -> torch.Tensor:
    """``n`` evenly spaced preferences from accuracy only to latency only, (n, 2).

    Raises:
        ValueError: when ``n`` < 2.
    """
    if n < 2:
        raise ValueError(f"a preference sweep needs at least 2 points, got {n}")
    w_lat = torch.linspace(0.0, 1.0, n)
    return torch.stack([1.0 - w_lat, w_lat], dim=1)


def normalised_latency(expected_ms: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """``log(E / min) / log(max / min)``: 0 at the device's fastest architecture, 1 at its
    slowest (a device whose bounds coincide gives 0)."""
    lo, hi = bounds
    span = float(np.log(max(hi, lo) / lo)) if lo > 0 else 0.0
    if span <= 1e-12:
        return expected_ms * 0.0
    return torch.log(expected_ms / lo) / span


def hypernet_objective(ce: torch.Tensor, expected_ms: torch.Tensor, bounds: tuple[float, float],
                       budget_ms: float | None, preference: torch.Tensor,
                       lambda_budget: float, lambda_target: float = 10.0
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss of one (device, preference) pair (module docstring), and its latency.

    Args:
        ce: cross-entropy of the sampled architecture on arch-val data (scalar).
        expected_ms: differentiable expected latency on the device (scalar).
        bounds: the device's exact (min, max) latency over the space in ms.
        budget_ms: the device's latency budget (C3) in ms; None drops the term (a device
            where no architecture meets it).
        preference: ``[w_acc, w_lat]`` (2,); the target is ``1 - w_lat`` in normalised latency.
        lambda_budget: weight of the budget constraint.
        lambda_target: weight of the preference's latency target.

    Returns:
        (loss, normalised latency in [0, 1]).
    """
    lat = normalised_latency(expected_ms, bounds)
    loss = ce + lambda_target * torch.relu(lat - (1.0 - preference[1]))
    if budget_ms is not None:
        loss = loss + lambda_budget * torch.relu(expected_ms - budget_ms) / budget_ms
    return loss, lat


def preference_gradient(g_acc: torch.Tensor, g_penalties: torch.Tensor,
                        eps: float = 1e-12) -> torch.Tensor:
    """The logit gradient of one (device, preference) pair.

    Args:
        g_acc: gradient of CE w.r.t. the pair's logits (5, 21).
        g_penalties: gradient of the target and budget penalties w.r.t. the logits (5, 21)
            (zero while both are met).
        eps: guards a zero CE gradient.

    Returns:
        ``g_acc / |g_acc| + g_penalties`` (5, 21): the CE direction at unit strength, so the
        penalties' weights mean the same on any data.
    """
    return g_acc / (g_acc.norm() + eps) + g_penalties
