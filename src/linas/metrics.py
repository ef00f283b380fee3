"""Segmentation metrics from a confusion matrix (pure functions)."""

from __future__ import annotations

import numpy as np
import torch


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int,
                     ignore_index: int = 255) -> np.ndarray:
    """Confusion matrix (num_classes, num_classes), rows = ground truth, cols = prediction."""
    valid = target != ignore_index
    t = target[valid].to(torch.int64)
    p = pred[valid].to(torch.int64)
    cm = torch.bincount(t * num_classes + p, minlength=num_classes**2)
    return cm.reshape(num_classes, num_classes).cpu().numpy().astype(np.int64)


def per_class_iou(cm: np.ndarray) -> np.ndarray:
    """IoU per class; NaN for classes absent from both ground truth and prediction."""
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(axis=0) + cm.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, tp / np.maximum(denom, 1), np.nan)


def mean_iou(cm: np.ndarray) -> float:
    """mIoU over classes present in the ground truth (absent classes excluded)."""
    present = cm.sum(axis=1) > 0
    iou = per_class_iou(cm)
    return float(np.nanmean(iou[present])) if present.any() else float("nan")


def pixel_accuracy(cm: np.ndarray) -> float:
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")
