"""Weight-sharing evaluation of architectures on a split."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np
import torch

from linas.compute import CPU, Compute, split_confusion
from linas.data.features import FeatureSet
from linas.metrics import mean_iou
from linas.search.bn_recal import BN_RECAL_BATCHES, feature_batches, recalibrated
from linas.supernet import Supernet


@torch.no_grad()
def evaluate_choices(net: Supernet, data: FeatureSet, choices: Sequence[int], num_classes: int,
                     ignore_index: int = 255, batch_size: int = 32,
                     compute: Compute = CPU, bn_recal: FeatureSet | None = None,
                     bn_recal_batches: int = BN_RECAL_BATCHES) -> tuple[float, np.ndarray]:
    """mIoU and confusion matrix of one path of the supernet on the whole of ``data``
    (eval-mode BN; under torchrun each rank evaluates its shard, the matrices are summed).

    Args:
        net: the supernet; left in eval mode.
        data: the split evaluated.
        choices: the path, one choice per layer.
        num_classes: classes of the confusion matrix.
        ignore_index: label left out.
        batch_size: images per forward (evaluation and recalibration).
        compute: device, precision and process group.
        bn_recal: when given, the path's BatchNorm statistics are recomputed on its first
            ``bn_recal_batches`` batches (in order) before the evaluation and restored after
            it (:func:`~linas.search.bn_recal.recalibrated`); None (default) evaluates with
            the supernet's own statistics.
        bn_recal_batches: how many batches of ``bn_recal`` to recalibrate on.

    Returns:
        (mIoU, confusion matrix (num_classes, num_classes)).

    Raises:
        ConfigError: ``bn_recal_batches`` below 1 (with ``bn_recal``).
        DataError: an empty ``bn_recal``.
    """
    net.eval()
    recal = (contextlib.nullcontext() if bn_recal is None else
             recalibrated(net, choices, feature_batches(bn_recal, batch_size, bn_recal_batches,
                                                        compute), compute))
    with recal:
        cm = split_confusion(lambda feats: net.decode(feats, choices=list(choices)), data,
                             num_classes, ignore_index, batch_size, compute)
    return mean_iou(cm), cm
