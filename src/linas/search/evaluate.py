"""Weight-sharing evaluation of architectures on a split."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from linas.compute import CPU, Compute, split_confusion
from linas.data.features import FeatureSet
from linas.metrics import mean_iou
from linas.supernet import Supernet


@torch.no_grad()
def evaluate_choices(net: Supernet, data: FeatureSet, choices: Sequence[int], num_classes: int,
                     ignore_index: int = 255, batch_size: int = 32,
                     compute: Compute = CPU) -> tuple[float, np.ndarray]:
    """mIoU and confusion matrix of one path of the supernet on the whole of ``data``
    (eval-mode BN; under torchrun each rank evaluates its shard, the matrices are summed)."""
    net.eval()
    cm = split_confusion(lambda feats: net.decode(feats, choices=list(choices)), data,
                         num_classes, ignore_index, batch_size, compute)
    return mean_iou(cm), cm
