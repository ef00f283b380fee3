import numpy as np
import torch

from linas.metrics import confusion_matrix, mean_iou, per_class_iou, pixel_accuracy


def test_miou_hand_computed_with_ignore_and_absent_class():
    target = torch.tensor([[0, 0, 1, 1], [0, 255, 1, 1]])
    pred = torch.tensor([[0, 1, 1, 1], [0, 2, 1, 0]])
    cm = confusion_matrix(pred, target, num_classes=4, ignore_index=255)
    # class 0: tp 2, fp 1 (pred 0 on a 1), fn 1 -> 2/4; class 1: tp 3, fp 1, fn 1 -> 3/5
    iou = per_class_iou(cm)
    assert np.isclose(iou[0], 0.5) and np.isclose(iou[1], 0.6)
    assert np.isnan(iou[3])  # never predicted nor present
    assert np.isclose(mean_iou(cm), (0.5 + 0.6) / 2)  # classes 2, 3 absent from ground truth
    assert np.isclose(pixel_accuracy(cm), 5 / 7)
    assert cm.sum() == 7  # the ignored pixel is not counted
