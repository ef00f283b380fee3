"""Leave-one-device-out evaluation of the cross-hardware predictor (pure: arrays in, JSON out).

For every device: train on the others, then predict the held-out device's latency of a
seeded sample of architectures (ground truth: its LUT sums) three ways:

* ``zero_shot``: from its spec features only;
* ``few_shot``: from its fingerprint (the 10 reference architectures' latencies);
* ``scaled_nearest`` (the baseline to beat): the training device whose fingerprint shape is
  closest (Euclidean distance of centred log-fingerprints), its LUT scaled by the least-squares
  factor that best matches the 10 fingerprint latencies;
* ``scaled_nearest_log`` (a diagnostic): the same device scaled by the geometric-mean ratio
  (least squares in log space), which one huge fingerprint entry cannot dominate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from linas.latency.fingerprint import reference_choices
from linas.latency.predictor import PredictorConfig, arch_sums
from linas.latency.predictor_train import DeviceData, train_predictor
from linas.space import NUM_CHOICES, NUM_LAYERS

METHODS: tuple[str, ...] = ("zero_shot", "few_shot", "scaled_nearest", "scaled_nearest_log")
METRICS: tuple[str, ...] = ("mape", "spearman", "within_10pct")


def table_latency(table_ms: np.ndarray, choices: np.ndarray) -> np.ndarray:
    """LUT-sum latency (N,) of choices (N, 5) on a (5, 21) table."""
    return arch_sums(torch.as_tensor(table_ms), torch.as_tensor(choices)).numpy()


def latency_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """MAPE, Spearman rho and the share within +-10% (fractions)."""
    rel = np.abs(np.asarray(pred) - true) / true
    rho = float(spearmanr(pred, true).statistic)
    return {"mape": float(rel.mean()), "spearman": rho if np.isfinite(rho) else 0.0,
            "within_10pct": float((rel <= 0.10).mean())}


def scaled_nearest(train: Sequence[DeviceData], fingerprint_ms: np.ndarray,
                   choices: np.ndarray, log_space: bool = False) -> tuple[np.ndarray, str]:
    """Baseline: the nearest training device by fingerprint shape, least-squares scaled.

    Args:
        train: candidate devices.
        fingerprint_ms: the new device's fingerprint (10,).
        choices: architectures to predict (N, 5).
        log_space: fit the scale in log space (geometric-mean ratio) instead of linear.

    Returns:
        Predicted latency (N,) and the name of the device used.
    """
    ref = reference_choices()
    target = np.log(fingerprint_ms) - np.log(fingerprint_ms).mean()
    dists = []
    for dev in train:
        fp = np.log(table_latency(dev.table_ms, ref))
        dists.append(float(np.linalg.norm(fp - fp.mean() - target)))
    near = train[int(np.argmin(dists))]
    fp_near = table_latency(near.table_ms, ref)
    if log_space:
        scale = float(np.exp(np.mean(np.log(fingerprint_ms) - np.log(fp_near))))
    else:
        scale = float(fp_near @ fingerprint_ms / (fp_near @ fp_near))  # argmin |a f_near - f|^2
    return scale * table_latency(near.table_ms, choices), near.name


def lodo(devices: Sequence[DeviceData], config: PredictorConfig = PredictorConfig(),
         n_archs: int = 5000, seed: int = 0,
         progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Leave-one-device-out over every device.

    Args:
        devices: at least three devices.
        config: predictor settings for each of the trainings.
        n_archs: architectures sampled (seeded) as ground truth per held-out device.
        seed: seed of the ground-truth sample (training uses ``config.seed``).
        progress: called with each held-out device's name.

    Returns:
        ``{"devices": {name: {method: {metric: value}}, "nearest": name}}, "mean": {method:
        {metric: value}}, "n_archs", "seed", "config"}``.
    """
    choices = np.random.default_rng(seed).integers(0, NUM_CHOICES, (n_archs, NUM_LAYERS))
    out: dict[str, Any] = {}
    for i, held in enumerate(devices):
        if progress is not None:
            progress(held.name)
        train = [d for j, d in enumerate(devices) if j != i]
        out[held.name] = _evaluate_one(held, train, config, choices)
    mean = {m: {k: float(np.mean([out[d][m][k] for d in out])) for k in METRICS}
            for m in METHODS}
    return {"devices": out, "mean": mean, "n_archs": n_archs, "seed": seed,
            "config": vars(replace(config))}


def _evaluate_one(held: DeviceData, train: list[DeviceData], config: PredictorConfig,
                  choices: np.ndarray) -> dict[str, Any]:
    model = train_predictor(train, config)
    truth = table_latency(held.table_ms, choices)
    fp = table_latency(held.table_ms, reference_choices())
    few_emb, fit_err = model.embed_fingerprint(fp)
    base, near = scaled_nearest(train, fp, choices)
    preds = {"zero_shot": model.predict(choices, model.embed_spec(held.features)),
             "few_shot": model.predict(choices, few_emb), "scaled_nearest": base,
             "scaled_nearest_log": scaled_nearest(train, fp, choices, log_space=True)[0]}
    res: dict[str, Any] = {m: latency_metrics(preds[m], truth) for m in METHODS}
    res["nearest"] = near
    res["few_shot_fit_rms_log_error"] = fit_err
    res["distance"], res["closest_training_device"] = model.distance(few_emb)
    return res


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table: one row per device, MAPE / rho / within-10% per method."""
    w = max(22, *(len(n) + 1 for n in result["devices"]))
    head = f"{'device':<{w}}" + "".join(f"| {m:<23}" for m in METHODS)
    sub = f"{'':<{w}}" + f"| {'MAPE':>6} {'rho':>6} {'<=10%':>6}   " * len(METHODS)
    rows = [head, sub, "-" * len(sub)]
    items = [*result["devices"].items(), ("MEAN", result["mean"])]
    for name, res in items:
        cells = "".join(f"| {res[m]['mape']:6.1%} {res[m]['spearman']:6.3f} "
                        f"{res[m]['within_10pct']:6.1%}   " for m in METHODS)
        rows.append(f"{name:<{w}}{cells}")
    return "\n".join(r.rstrip() for r in rows)
