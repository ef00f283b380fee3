"""Cross-hardware latency predictor: a factorised (low-rank) model of log-LUT tables.

Model. A device is an embedding ``e = [s, z]`` (s: overall log-speed, z: ``rank`` shape
coordinates). Its predicted decoder LUT is ``T(e)[l, c] = exp(mu[l, c] + s + U[l, c] . z)``
(ms, shape (5, 21)) and an architecture's latency is the sum of its five entries, i.e. the
one-hot encoding (5 x 21) dotted with ``T(e)``. Under soft per-layer probabilities the same
dot product is the expected latency, so the predictor is differentiable inside search.

Why factorised and not an MLP: there are only ~9 devices. A low-rank model shares the shared
structure of every table (``mu``, ``U``) and leaves each device 1 + ``rank`` numbers; an MLP
from hardware features to latency would have far more parameters than devices.

Hardware representations, both mapped to ``e``:

* few-shot: ``e`` fitted to a device's 10-architecture fingerprint (log-error least squares
  with a Gaussian prior on ``z`` centred on the training devices), see :meth:`embed_fingerprint`;
* zero-shot: ridge regression from spec features (:func:`linas.latency.hardware.spec_features`)
  to the training devices' embeddings, see :meth:`embed_spec`.

Everything is decoder-only: LUT op sums without fixed part or interaction terms, because the
reference LUTs have neither.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from linas._errors import ConfigError, LUTError
from linas._io import save_safetensors_atomic
from linas._tensors import check_tensors, read_safetensors
from linas.latency.fingerprint import reference_choices
from linas.latency.hardware import FEATURE_NAMES
from linas.latency.lut import LUT
from linas.space import NUM_CHOICES, NUM_LAYERS

FORMAT = "linas-latency-predictor/v1"


@dataclass(frozen=True)
class PredictorConfig:
    """Training and inference settings (every random choice seeded by ``seed``).

    Args:
        rank: shape dimensions of the device embedding (capped at devices - 1).
        samples_per_device: architectures sampled per training device.
        steps: Adam steps of the joint fit.
        lr: Adam learning rate.
        l2: weight decay on ``U`` and the training embeddings.
        table_weight: weight of the direct per-entry log-table loss (a regulariser).
        prior: strength of the few-shot prior pulling ``z`` to the training devices.
        fewshot_steps: Adam steps of a few-shot fit.
        ridge: ridge penalty of the zero-shot spec head.
        seed: seed of architecture sampling.
    """

    rank: int = 5
    samples_per_device: int = 2000
    steps: int = 400
    lr: float = 0.03
    l2: float = 1e-3
    table_weight: float = 0.1
    prior: float = 0.002
    fewshot_steps: int = 200
    ridge: float = 1.0
    seed: int = 0


@dataclass
class Factors:
    """The learnt tensors: shared ``mu`` (5, 21) and ``basis`` (5, 21, rank), per-device
    ``embeddings`` (D, 1 + rank), and the zero-shot head ``head_w`` (F + 1, 1 + rank) over
    features standardised with ``feat_mean``/``feat_std`` (F,)."""

    mu: torch.Tensor
    basis: torch.Tensor
    embeddings: torch.Tensor
    head_w: torch.Tensor
    feat_mean: torch.Tensor
    feat_std: torch.Tensor


class LatencyPredictor:
    """Predicts any device's decoder latency from its embedding (see module docstring).

    Args:
        factors: the learnt tensors.
        devices: training device names, in ``factors.embeddings`` row order.
        config: the settings it was trained with.
        meta: extra JSON metadata (training LUT sources, features, fit errors).
    """

    def __init__(self, factors: Factors, devices: list[str], config: PredictorConfig,
                 meta: dict[str, Any] | None = None) -> None:
        self.f = factors
        self.devices = list(devices)
        self.config = config
        self.meta = dict(meta or {})

    @property
    def rank(self) -> int:
        return int(self.f.basis.shape[-1])

    def embedding(self, device: str) -> np.ndarray:
        """The training device's embedding ``[s, z]``, shape (1 + rank,).

        Raises:
            ConfigError: for a device the predictor was not trained on.
        """
        if device not in self.devices:
            raise ConfigError(f"predictor has no device '{device}'; trained on: "
                              f"{', '.join(self.devices)}")
        return self.f.embeddings[self.devices.index(device)].numpy().copy()

    def log_table(self, emb: torch.Tensor) -> torch.Tensor:
        """Predicted log-ms table (5, 21) of embedding ``emb`` (1 + rank,); differentiable."""
        return self.f.mu + emb[0] + self.f.basis @ emb[1:]  # (5, 21)

    def table(self, emb: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Predicted per-entry latency in ms, shape (5, 21)."""
        return torch.exp(self.log_table(torch.as_tensor(emb, dtype=torch.float32)))

    def predict(self, choices: np.ndarray, emb: np.ndarray | torch.Tensor) -> np.ndarray:
        """Latency in ms (N,) of architectures given as choice indices (N, 5)."""
        with torch.no_grad():
            return arch_sums(self.table(emb), torch.as_tensor(np.asarray(choices))).numpy()

    def expected(self, probs: torch.Tensor, emb: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Differentiable expected latency (ms) under per-layer probabilities (5, 21).

        Equals :meth:`predict` on one-hot probabilities; gradients flow to ``probs`` (and to
        ``emb`` when it is a tensor that requires them).
        """
        table = self.table(emb).to(dtype=probs.dtype, device=probs.device)
        return (probs * table).sum()

    def embed_fingerprint(self, latencies_ms: np.ndarray) -> tuple[np.ndarray, float]:
        """Few-shot: fit ``[s, z]`` to a fingerprint (10 reference-architecture latencies).

        Minimises the mean squared log error on the 10 architectures plus ``prior`` times the
        squared standardised distance of ``z`` from the training devices' mean, starting from
        the training device whose table, offset by the best constant, fits the fingerprint
        best (so a scaled copy of a training device is recovered from the start).

        Returns:
            The embedding (1 + rank,) and the RMS log error of the fit on the fingerprint.

        Raises:
            LUTError: when the fingerprint is not 10 positive finite numbers.
        """
        y = _check_fingerprint(latencies_ms)
        choices = torch.as_tensor(reference_choices())
        z_train = self.f.embeddings[:, 1:]
        z_mean, z_std = z_train.mean(0), z_train.std(0, unbiased=False) + 1e-3
        start = z_train[int(torch.argmin(torch.stack(
            [_offset_fit(self, choices, y, z)[1] for z in z_train])))]
        emb, data_loss = _fit_embedding(self, choices, y, start, z_mean, z_std)
        return emb.numpy(), float(np.sqrt(data_loss))

    def embed_lut(self, lut: LUT) -> np.ndarray:
        """A device's embedding from its LUT: its training row when the predictor was trained
        on it (by name), else the few-shot fit to the LUT's fingerprint. Use these as the
        hardware embedding of every device of a search (one space for known and new ones).
        """
        if lut.name in self.devices:
            return self.embedding(lut.name)
        table = torch.as_tensor(np.asarray(lut.mean_ms), dtype=torch.float32)
        fp = arch_sums(table, torch.as_tensor(reference_choices())).numpy()
        return self.embed_fingerprint(fp)[0]

    def embed_spec(self, features: np.ndarray) -> np.ndarray:
        """Zero-shot: the embedding the spec head maps hardware features (F,) to."""
        x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
        x = (x - self.f.feat_mean) / self.f.feat_std
        return (torch.cat([x, torch.ones(1)]) @ self.f.head_w).numpy()

    def distance(self, emb: np.ndarray) -> tuple[float, str]:
        """Standardised distance of ``emb``'s shape part to the nearest training device.

        Returns:
            (distance, name of that device); compare with ``meta['novelty_threshold']``.
        """
        z = self.f.embeddings[:, 1:]
        scale = z.std(0, unbiased=False) + 1e-3
        d = (((z - torch.as_tensor(emb[1:], dtype=torch.float32)) / scale) ** 2).sum(1).sqrt()
        i = int(torch.argmin(d))
        return float(d[i]), self.devices[i]

    def predicted_lut(self, emb: np.ndarray, hardware: str,
                      input_size: tuple[int, int] = (128, 128),
                      provenance: dict[str, Any] | None = None) -> LUT:
        """A schema-v2 LUT of predicted entries (std 0, provenance says predicted)."""
        mean = self.table(emb).detach().numpy().astype(np.float64)
        prov = {"runtime": "predicted", "method": f"{FORMAT} (rank {self.rank})",
                "predicted": True, "trained_on": self.devices, **(provenance or {})}
        return LUT(hardware=hardware, input_size=input_size, mean_ms=mean,
                   std_ms=np.zeros_like(mean), provenance=prov)

    def save(self, path: str | Path) -> Path:
        """Write tensors as safetensors with the JSON metadata in its header (no pickle),
        atomically."""
        meta = {"format": FORMAT, "devices": self.devices, "config": asdict(self.config),
                "feature_names": list(FEATURE_NAMES), "meta": self.meta}
        return save_safetensors_atomic(Path(path), asdict(self.f),
                                       metadata={"linas": json.dumps(meta)})

    @classmethod
    def load(cls, path: str | Path) -> LatencyPredictor:
        """Read a predictor written by :meth:`save`.

        Raises:
            ConfigError: when the file is missing or not a LINAS+ predictor.
        """
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"predictor {path}: no such file; train one with "
                              "`linas predictor train --luts DIR --out FILE`")
        fix = "re-train it with `linas predictor train`"
        tensors, raw = read_safetensors(path, fix)
        try:
            header = json.loads(raw.get("linas", "{}"))
        except json.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            got = header.get("format") if isinstance(header, dict) else None
            raise ConfigError(f"predictor {path}: format {got!r}, expected '{FORMAT}'; {fix}")
        try:
            devices = [str(d) for d in header["devices"]]
            config = PredictorConfig(**header["config"])
            meta = dict(header["meta"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"predictor {path}: header lacks or mangles {exc}; {fix}") from None
        basis = tensors.get("basis")
        rank = int(basis.shape[-1]) if basis is not None and basis.dim() == 3 else config.rank
        check_tensors(asdict(empty_factors(rank, len(devices))), tensors, f"predictor {path}",
                      fix)
        return cls(Factors(**tensors), devices, config, meta)


def arch_sums(table: torch.Tensor, choices: torch.Tensor) -> torch.Tensor:
    """Sum of each architecture's five entries: table (5, 21), choices (N, 5) -> (N,)."""
    layers = torch.arange(NUM_LAYERS)[None, :]  # (1, 5)
    return table[layers, choices.long()].sum(1)


def _check_fingerprint(latencies_ms: np.ndarray) -> torch.Tensor:
    y = np.asarray(latencies_ms, dtype=np.float64).ravel()
    n = len(reference_choices())
    if y.shape != (n,) or not np.all(np.isfinite(y)) or np.any(y <= 0):
        raise LUTError(f"fingerprint must be {n} positive finite latencies (ms) of the reference "
                       f"architectures, got {y.tolist()}; re-measure with `linas lut fingerprint`")
    return torch.as_tensor(np.log(y), dtype=torch.float32)


def _offset_fit(model: LatencyPredictor, choices: torch.Tensor, log_y: torch.Tensor,
                z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Best log-offset ``s`` for shape ``z`` (closed form) and its mean squared log error."""
    with torch.no_grad():
        base = torch.log(arch_sums(model.table(torch.cat([torch.zeros(1), z])), choices))
        s = (log_y - base).mean()
        return s, ((base + s - log_y) ** 2).mean()


def _fit_embedding(model: LatencyPredictor, choices: torch.Tensor, log_y: torch.Tensor,
                   z0: torch.Tensor, z_mean: torch.Tensor, z_std: torch.Tensor
                   ) -> tuple[torch.Tensor, float]:
    """Adam fit of ``[s, z]`` from ``z0`` (s starts at the closed-form offset)."""
    cfg = model.config
    s0, _ = _offset_fit(model, choices, log_y, z0)
    emb = torch.cat([s0.reshape(1), z0]).clone().requires_grad_(True)
    opt = torch.optim.Adam([emb], lr=0.05)
    for _ in range(cfg.fewshot_steps):
        opt.zero_grad()
        pred = torch.log(arch_sums(torch.exp(model.log_table(emb)), choices))
        data = ((pred - log_y) ** 2).mean()
        loss = data + cfg.prior * (((emb[1:] - z_mean) / z_std) ** 2).mean()
        loss.backward()
        opt.step()
    return emb.detach(), float(data.detach())


def empty_factors(rank: int, n_devices: int, n_features: int = len(FEATURE_NAMES)) -> Factors:
    """Zero-initialised factors of the right shapes (for loading and for training)."""
    return Factors(mu=torch.zeros(NUM_LAYERS, NUM_CHOICES),
                   basis=torch.zeros(NUM_LAYERS, NUM_CHOICES, rank),
                   embeddings=torch.zeros(n_devices, 1 + rank),
                   head_w=torch.zeros(n_features + 1, 1 + rank),
                   feat_mean=torch.zeros(n_features), feat_std=torch.ones(n_features))
