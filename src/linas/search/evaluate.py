"""Weight-sharing evaluation of architectures on a split."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from linas.data.features import FeatureSet
from linas.metrics import confusion_matrix, mean_iou
from linas.supernet import Supernet


@torch.no_grad()
def evaluate_choices(net: Supernet, data: FeatureSet, choices: Sequence[int], num_classes: int,
                     ignore_index: int = 255, batch_size: int = 32) -> tuple[float, np.ndarray]:
    """mIoU and confusion matrix of one path of the supernet on ``data`` (eval-mode BN)."""
    net.eval()
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    for feats, masks in data.batches(batch_size):
        pred = net.decode(feats, choices=list(choices)).argmax(dim=1)  # (B, H, W)
        cm += confusion_matrix(pred, masks, num_classes, ignore_index)
    return mean_iou(cm), cm
