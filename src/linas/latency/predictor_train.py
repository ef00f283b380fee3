"""Training the cross-hardware predictor from device LUTs (pure: arrays in, model out).

Fit in two steps: (1) a closed-form start, the SVD of the training devices' centred log
tables (rank-``r`` PCA: ``mu`` the mean table shape, ``basis`` the leading directions,
embeddings the coordinates); (2) Adam refinement of all factors on the log-latency of
architectures sampled per device (seeded), so that what matters for whole-architecture
latency is fitted first, with a small per-entry table term as a regulariser. The zero-shot
head is a ridge regression from standardised spec features to the embeddings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from linas._errors import ConfigError
from linas.latency.hardware import HardwareSpec, spec_features, spec_for_lut
from linas.latency.lut import LUT, find_luts, load_lut
from linas.latency.predictor import Factors, LatencyPredictor, PredictorConfig
from linas.space import NUM_CHOICES, NUM_LAYERS


@dataclass(frozen=True)
class DeviceData:
    """One training device: decoder op-mean table (5, 21) in ms and spec features (F,)."""

    name: str
    table_ms: np.ndarray
    features: np.ndarray
    spec_key: str = "unknown"
    source: str = "<memory>"


def device_data(lut: LUT, spec: HardwareSpec) -> DeviceData:
    """A LUT and its spec as training data (decoder-only: no fixed part, no interactions)."""
    return DeviceData(lut.name, np.asarray(lut.mean_ms, dtype=np.float64), spec_features(spec),
                      spec.key, lut.source)


def load_devices(paths: Sequence[str | Path], allow_unknown: bool = False) -> list[DeviceData]:
    """Load every LUT of ``paths`` (files or folders) with its hardware spec.

    Args:
        paths: LUT files or folders of ``*.json`` LUTs.
        allow_unknown: give devices without a spec imputed features (with a warning) instead
            of failing.

    Raises:
        LUTError: for a missing or malformed LUT.
        ConfigError: for no LUTs, duplicate device names, mixed input sizes, or a device
            without a spec (unless ``allow_unknown``).
    """
    luts = [load_lut(p) for p in find_luts(list(paths))]
    if not luts:
        raise ConfigError(f"--luts {', '.join(map(str, paths))}: no LUT files found; pass LUT "
                          "files or folders of *.json LUTs")
    sizes = {lut.input_size for lut in luts}
    if len(sizes) > 1:
        raise ConfigError(f"LUTs measured at different input sizes {sorted(sizes)}; the "
                          "predictor needs one size (re-measure with --size 128x128)")
    devices = [device_data(lut, spec_for_lut(lut, allow_unknown)) for lut in luts]
    names = [d.name for d in devices]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"duplicate device names {dupes} among the LUT files; device names are "
                          "the file stems, rename one of the files")
    return devices


def train_predictor(devices: Sequence[DeviceData],
                    config: PredictorConfig = PredictorConfig()) -> LatencyPredictor:
    """Fit the factorised predictor on every device's table.

    Args:
        devices: at least two devices with distinct names.
        config: settings (rank is capped at ``len(devices) - 1``).

    Returns:
        The trained :class:`LatencyPredictor`.

    Raises:
        ConfigError: for fewer than two devices or duplicate names.
    """
    names = [d.name for d in devices]
    if len(devices) < 2 or len(set(names)) != len(names):
        raise ConfigError(f"predictor training needs >= 2 devices with distinct names, got "
                          f"{names}; pass more LUTs with --luts (rename duplicates' files)")
    rank = max(1, min(config.rank, len(devices) - 1))
    log_t = torch.as_tensor(np.log(np.stack([d.table_ms for d in devices])),
                            dtype=torch.float32)  # (D, 5, 21)
    mu, basis, emb = _svd_start(log_t, rank)
    mu, basis, emb = _refine(log_t, mu, basis, emb, config)
    feats = torch.as_tensor(np.stack([d.features for d in devices]), dtype=torch.float32)
    feat_mean, feat_std, head_w = _ridge_head(feats, emb, config.ridge)
    factors = Factors(mu, basis, emb, head_w, feat_mean, feat_std)
    model = LatencyPredictor(factors, names, config)
    model.meta.update(_fit_report(model, devices, log_t))
    return model


def _svd_start(log_t: torch.Tensor, rank: int) -> tuple[torch.Tensor, ...]:
    """PCA of the centred log tables: mu (5, 21), basis (5, 21, r), embeddings (D, 1 + r)."""
    d = log_t.shape[0]
    flat = log_t.reshape(d, -1)  # (D, 105)
    s = flat.mean(1, keepdim=True)  # (D, 1) overall log-speed
    mu = (flat - s).mean(0)  # (105,)
    resid = flat - s - mu  # (D, 105)
    u, sv, vt = torch.linalg.svd(resid, full_matrices=False)
    scale = float(np.sqrt(d))
    z = u[:, :rank] * scale  # (D, r), unit-variance coordinates
    basis = (vt[:rank].T * sv[:rank] / scale).reshape(NUM_LAYERS, NUM_CHOICES, rank)
    return mu.reshape(NUM_LAYERS, NUM_CHOICES), basis, torch.cat([s, z], 1)


def _refine(log_t: torch.Tensor, mu: torch.Tensor, basis: torch.Tensor, emb: torch.Tensor,
            config: PredictorConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Adam on sampled architectures' log-latency plus the per-entry table term."""
    rng = np.random.default_rng(config.seed)
    d = log_t.shape[0]
    choices = torch.as_tensor(rng.integers(0, NUM_CHOICES, (d, config.samples_per_device,
                                                            NUM_LAYERS)))  # (D, N, 5)
    onehot = _onehot(choices)  # (D, N, 105)
    target = torch.log(_batched_sums(torch.exp(log_t), onehot))  # (D, N)
    params = [p.clone().requires_grad_(True) for p in (mu, basis, emb)]
    opt = torch.optim.Adam(params, lr=config.lr)
    for _ in range(config.steps):
        opt.zero_grad()
        loss = _loss(params, log_t, onehot, target, config)
        loss.backward()
        opt.step()
    return tuple(p.detach() for p in params)  # type: ignore[return-value]


def _loss(params: list[torch.Tensor], log_t: torch.Tensor, onehot: torch.Tensor,
          target: torch.Tensor, config: PredictorConfig) -> torch.Tensor:
    mu, basis, emb = params
    pred_log_t = mu + emb[:, :1, None] + torch.einsum("lcr,dr->dlc", basis, emb[:, 1:])
    arch = torch.log(_batched_sums(torch.exp(pred_log_t), onehot))  # (D, N)
    table = ((pred_log_t - log_t) ** 2).mean()
    reg = (basis**2).mean() + (emb[:, 1:] ** 2).mean()
    return ((arch - target) ** 2).mean() + config.table_weight * table + config.l2 * reg


def _onehot(choices: torch.Tensor) -> torch.Tensor:
    """Architecture encodings: choices (..., 5) -> one-hot per layer, flattened (..., 105)."""
    hot = torch.nn.functional.one_hot(choices.long(), NUM_CHOICES)  # (..., 5, 21)
    return hot.flatten(-2).to(torch.float32)


def _batched_sums(tables: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
    """Per-device architecture sums: tables (D, 5, 21), one-hot (D, N, 105) -> (D, N)."""
    # a matmul, not a gather: its backward is another matmul instead of a scatter-add
    return torch.einsum("dnk,dk->dn", onehot, tables.flatten(1))


def _ridge_head(feats: torch.Tensor, emb: torch.Tensor, ridge: float
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ridge regression of embeddings on standardised features (bias not penalised)."""
    mean = feats.mean(0)
    std = feats.std(0, unbiased=False)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))  # constant feature: no scaling
    x = torch.cat([(feats - mean) / std, torch.ones(feats.shape[0], 1)], 1)  # (D, F + 1)
    pen = ridge * torch.eye(x.shape[1])
    pen[-1, -1] = 0.0
    w = torch.linalg.solve(x.T @ x + pen, x.T @ emb)  # (F + 1, 1 + r)
    return mean, std, w


def _fit_report(model: LatencyPredictor, devices: Sequence[DeviceData],
                log_t: torch.Tensor) -> dict[str, object]:
    """Per-device RMS log error of the fitted tables, sources, and the novelty threshold."""
    rms = {}
    for i, dev in enumerate(devices):
        pred = model.log_table(model.f.embeddings[i])
        rms[dev.name] = float(((pred - log_t[i]) ** 2).mean().sqrt())
    nn = [_nearest_other(model, i) for i in range(len(devices))]
    return {"fit_rms_log_error": rms, "sources": {d.name: d.source for d in devices},
            "spec_keys": {d.name: d.spec_key for d in devices},
            # a new device farther than this from every training device is "far" (warned)
            "novelty_threshold": 1.5 * max(nn) if nn else 0.0}


def _nearest_other(model: LatencyPredictor, i: int) -> float:
    z = model.f.embeddings[:, 1:]
    scale = z.std(0, unbiased=False) + 1e-3
    d = (((z - z[i]) / scale) ** 2).sum(1).sqrt()
    d[i] = float("inf")
    return float(d.min())
