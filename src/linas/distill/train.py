"""Final training of an extracted architecture (CE; latency-aware KD is added by I5)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from linas.data.features import FeatureSet
from linas.metrics import confusion_matrix, mean_iou, per_class_iou, pixel_accuracy
from linas.search.losses import segmentation_ce
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
                ignore_index: int = 255,
                on_step: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """Train the decoder of ``model`` (the encoder stays as it is in ``train``) with CE and a
    cosine learning-rate schedule; returns per-epoch mean losses."""
    gen = torch.Generator().manual_seed(config.seed)
    params = [p for p in model.parameters() if p.requires_grad]  # a frozen encoder has none
    opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * -(-len(train) // config.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    history: list[dict[str, Any]] = []
    for epoch in range(config.epochs):
        model.train()
        if not any(p.requires_grad for p in model.encoder.parameters()):
            model.encoder.eval()  # a frozen encoder keeps its BN statistics
        losses = []
        for feats, masks in train.batches(config.batch_size, gen):
            loss = segmentation_ce(model.decode(feats), masks, ignore_index)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step()
        history.append({"epoch": epoch, "ce": float(np.mean(losses))})
    return history


@torch.no_grad()
def evaluate_model(model: SegmentationModel, data: FeatureSet, num_classes: int,
                   ignore_index: int = 255, batch_size: int = 32) -> dict[str, Any]:
    """mIoU (absent classes excluded), per-class IoU and pixel accuracy on ``data``."""
    model.eval()
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    for feats, masks in data.batches(batch_size):
        cm += confusion_matrix(model.decode(feats).argmax(dim=1), masks, num_classes,
                               ignore_index)
    iou = per_class_iou(cm)
    return {"miou": mean_iou(cm), "per_class_iou": [None if np.isnan(v) else float(v)
                                                     for v in iou],
            "pixel_accuracy": pixel_accuracy(cm), "confusion_matrix": cm.tolist()}
