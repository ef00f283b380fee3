"""The preference-conditioned hypernetwork (I1, after MODNAS) and its pure building blocks.

A small MLP maps (hardware embedding, preference ``[w_acc, w_lat]`` on the simplex) to the
decoder's architecture logits (5, 21). The hardware embedding is the 11-d scale-free latency
fingerprint of a device's decoder LUT (:func:`linas.latency.fingerprint.fingerprint_embedding`),
z-scored with statistics of the training devices so that a held-out device is embedded in the
same coordinates. Its objective per (device, preference) is::

    w_acc * CE + w_lat * (E[lat_d] - min_d) / (max_d - min_d)
        + lambda_budget * relu(E[lat_d] - budget_d) / budget_d

where ``min_d``/``max_d`` are the exact latency bounds of device ``d`` over the whole space, so
the latency term lies in [0, 1] on every device whatever its speed, and the last term honours
the C3 budget as a constraint (large fixed weight, not scaled by the preference).
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


@dataclass(frozen=True)
class HypernetConfig:
    """Hyper-parameters of the hypernetwork strategy (the schedule comes from SearchConfig)."""

    hidden: int = 64
    lr: float = 1e-2
    dirichlet_alpha: float = 1.0
    pairs_per_step: int = 4
    lambda_budget: float = 10.0
    sweep_points: int = 21
    sweep_samples: int = 0
    sweep_tau: float = 1.0


def raw_embedding(model: LUTLatencyModel) -> np.ndarray:
    """A device's un-normalised embedding (11,) from its decoder-only fingerprint.

    The LUT's fixed part (encoder etc., present only in end-to-end LUTs) is left out so that
    end-to-end and decoder-only LUTs are embedded alike.
    """
    decoder_only = LUTLatencyModel(model.lut, use_fixed=False)
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
    """MLP (embedding, preference) -> architecture logits (5, 21).

    The output layer starts at zero, so every device and preference starts from uniform
    logits, as the baseline's architecture logits do.

    Args:
        embed_dim: size of the hardware embedding.
        hidden: width of the two hidden layers.
    """

    def __init__(self, embed_dim: int = EMBED_DIM, hidden: int = 64) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.body = nn.Sequential(nn.Linear(embed_dim + PREF_DIM, hidden), nn.ReLU(),
                                  nn.Linear(hidden, hidden), nn.ReLU())
        self.out = nn.Linear(hidden, NUM_LAYERS * NUM_CHOICES)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, embedding: torch.Tensor, preference: torch.Tensor) -> torch.Tensor:
        """Logits (B, 5, 21) for inputs (B, E) and (B, 2); (5, 21) for unbatched (E,), (2,).

        Raises:
            ValueError: when the trailing sizes are not (embed_dim, 2).
        """
        if embedding.shape[-1] != self.embed_dim or preference.shape[-1] != PREF_DIM:
            raise ValueError(f"expected embedding (..., {self.embed_dim}) and preference "
                             f"(..., {PREF_DIM}), got {tuple(embedding.shape)} and "
                             f"{tuple(preference.shape)}")
        x = torch.cat([embedding, preference.to(embedding.dtype)], dim=-1)  # (..., E + 2)
        return self.out(self.body(x)).unflatten(-1, (NUM_LAYERS, NUM_CHOICES))  # (..., 5, 21)

    def probs(self, embedding: torch.Tensor, preference: torch.Tensor) -> torch.Tensor:
        """Per-layer choice distributions (..., 5, 21): softmax of :meth:`forward`."""
        return torch.softmax(self(embedding, preference), dim=-1)


def build_hypernet(config: HypernetConfig, seed: int) -> ArchHypernet:
    """A hypernetwork whose initial weights depend only on ``seed`` (not the global RNG)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ArchHypernet(hidden=config.hidden)


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


def hypernet_objective(ce: torch.Tensor, expected_ms: torch.Tensor, bounds: tuple[float, float],
                       budget_ms: float | None, preference: torch.Tensor,
                       lambda_budget: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The scalarised loss of one (device, preference) pair.

    Args:
        ce: cross-entropy of the sampled architecture on arch-val data (scalar).
        expected_ms: differentiable expected latency on the device (scalar).
        bounds: the device's exact (min, max) latency over the space in ms.
        budget_ms: the device's latency budget (C3) in ms; None drops the term (a device
            where no architecture meets it).
        preference: ``[w_acc, w_lat]`` (2,).
        lambda_budget: fixed weight of the budget constraint.

    Returns:
        (loss, normalised latency in [0, 1]).
    """
    lo, hi = bounds
    lat_norm = (expected_ms - lo) / max(hi - lo, 1e-12)
    loss = preference[0] * ce + preference[1] * lat_norm
    if budget_ms is not None:
        loss = loss + lambda_budget * torch.relu(expected_ms - budget_ms) / budget_ms
    return loss, lat_norm
