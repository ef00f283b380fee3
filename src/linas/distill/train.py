"""Final training of an extracted architecture (CE; latency-aware KD is added by I5)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from linas.compute import CPU, Compute, shard_batches, split_confusion
from linas.data.features import FeatureSet
from linas.metrics import mean_iou, per_class_iou, pixel_accuracy
from linas.supernet import SegmentationModel


@dataclass(frozen=True)
class FinalTrainConfig:
    """Hyper-parameters of the final training."""

    epochs: int = 15
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0


def train_final(model: SegmentationModel, train: FeatureSet, config: FinalTrainConfig,
                ignore_index: int = 255, on_step: Callable[[], None] | None = None,
                compute: Compute = CPU) -> list[dict[str, Any]]:
    """Train the decoder of ``model`` (the encoder stays as it is in ``train``; the model is
    on ``compute``'s device) with CE and a cosine learning-rate schedule; returns per-epoch
    mean losses (of the whole batches, under torchrun too)."""
    from linas.search.base import shared_ce, step_with

    gen = torch.Generator().manual_seed(config.seed)
    params = [p for p in model.parameters() if p.requires_grad]  # a frozen encoder has none
    opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    scaler = compute.scaler()
    steps = config.epochs * -(-len(train) // config.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    history: list[dict[str, Any]] = []
    for epoch in range(config.epochs):
        model.train()
        if not any(p.requires_grad for p in model.encoder.parameters()):
            model.encoder.eval()  # a frozen encoder keeps its BN statistics
        losses = []
        for share, (feats, masks) in shard_batches(train, config.batch_size, gen, compute):
            with compute.autocast():
                loss = shared_ce(model.decode(feats), masks, share, ignore_index)
            opt.zero_grad(set_to_none=True)
            step_with(loss, opt, params, compute, scaler)
            sched.step()
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step()
        total = compute.sum_(torch.tensor(losses, dtype=torch.float64, device=compute.device))
        history.append({"epoch": epoch, "ce": float(total.mean())})
    compute.sync_buffers(model)
    return history


@torch.no_grad()
def evaluate_model(model: SegmentationModel, data: FeatureSet, num_classes: int,
                   ignore_index: int = 255, batch_size: int = 32,
                   compute: Compute = CPU) -> dict[str, Any]:
    """mIoU (absent classes excluded), per-class IoU and pixel accuracy on the whole of
    ``data`` (under torchrun each rank its shard, the confusion matrices summed)."""
    model.eval()
    cm = split_confusion(model.decode, data, num_classes, ignore_index, batch_size, compute)
    iou = per_class_iou(cm)
    return {"miou": mean_iou(cm), "per_class_iou": [None if np.isnan(v) else float(v)
                                                     for v in iou],
            "pixel_accuracy": pixel_accuracy(cm), "confusion_matrix": cm.tolist()}
