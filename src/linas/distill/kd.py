"""Latency-aware knowledge distillation (I5): the loss terms, pure functions of tensors.

The final training of a student (an extracted architecture) adds to its CE

    loss = CE + alpha * logit_kd + beta * feature_kd + gamma * aicsd

against a frozen teacher (by default the largest subnet of the supernet), where

* :func:`logit_kd` is Hinton's KD per pixel, ``KL(softmax(t/T) || softmax(s/T)) * T^2``,
  averaged over the pixels whose label is not the ignore index;
* :func:`feature_kd` is the MSE between the student's five decoder layer outputs, each mapped
  by a learned 1x1 conv (:class:`FeatureAdapters`), and the detached teacher's, averaged over
  the elements of a layer, then over the five layers (every pixel counts: the maps are at
  the layers' own resolutions, where labels do not apply);
* :func:`aicsd` is inter-class similarity distillation: per image, each class's logit map over
  the labelled pixels (ignored pixels zeroed in both maps) is flattened and L2-normalised, the
  C x C cosine similarity matrix of the classes is turned into row-wise distributions
  ``softmax(sim / T)``, and ``KL(teacher || student)`` is averaged over the C rows and over the
  images that have at least one labelled pixel (no ``T^2`` factor; ``gamma`` sets its weight);
* alpha comes from :func:`kd_alpha` (``latency``: the faster the student is than the teacher,
  the more it leans on the teacher).

Teacher inputs are detached in every term, so no gradient ever reaches the teacher.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import skip_init

from linas.space import LAYERS

KD_MODES = ("none", "constant", "latency")


def logit_kd(student: torch.Tensor, teacher: torch.Tensor, masks: torch.Tensor,
             temperature: float, ignore_index: int = 255) -> torch.Tensor:
    """Hinton KD per pixel, ``KL(softmax(t/T) || softmax(s/T)) * T^2`` over classes, mean
    over the labelled pixels.

    Args:
        student, teacher: logits (B, C, H, W).
        masks: labels (B, H, W); pixels equal to ``ignore_index`` are left out.
        temperature: T > 0.

    Returns:
        A scalar; a zero carrying the student's graph when no pixel is labelled.
    """
    log_s = F.log_softmax(student.float() / temperature, dim=1)  # (B, C, H, W)
    log_t = F.log_softmax(teacher.detach().float() / temperature, dim=1)  # (B, C, H, W)
    kl = (log_t.exp() * (log_t - log_s)).sum(dim=1)  # (B, H, W)
    valid = masks != ignore_index  # (B, H, W)
    if not bool(valid.any()):
        return student.sum() * 0.0
    return kl[valid].mean() * temperature ** 2


def feature_kd(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]
               ) -> torch.Tensor:
    """Mean over layers of the MSE between (adapted) student and detached teacher maps.

    Args:
        student: the student's layer outputs, already mapped by :class:`FeatureAdapters`;
            each (B, C_i, H_i, W_i).
        teacher: the teacher's layer outputs, the same shapes.

    Raises:
        ValueError: different numbers of layers or shapes.
    """
    if len(student) != len(teacher) or not student:
        raise ValueError(f"feature KD needs the same non-zero number of layers, got "
                         f"{len(student)} student and {len(teacher)} teacher maps")
    if student[0].numel() == 0:  # an empty shard under torchrun
        return sum((s.sum() * 0.0 for s in student), torch.zeros((), device=student[0].device))
    terms = []
    for i, (s, t) in enumerate(zip(student, teacher, strict=True)):
        if s.shape != t.shape:
            raise ValueError(f"feature KD layer {i}: student {tuple(s.shape)} vs teacher "
                             f"{tuple(t.shape)}")
        terms.append(F.mse_loss(s.float(), t.detach().float()))
    return torch.stack(terms).mean()


def similarity_rows(logits: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per image, the C x C cosine similarities of the class logit maps over the labelled
    pixels: logits (B, C, H, W), valid (B, H, W) bool -> (B, C, C)."""
    z = (logits.float() * valid.unsqueeze(1)).flatten(2)  # (B, C, H*W), ignored pixels 0
    z = F.normalize(z, dim=2)  # each class map to unit L2 norm (an all-zero map stays 0)
    return z @ z.transpose(1, 2)  # (B, C, C)


def aicsd(student: torch.Tensor, teacher: torch.Tensor, masks: torch.Tensor,
          temperature: float, ignore_index: int = 255) -> torch.Tensor:
    """Inter-class similarity distillation: ``KL(softmax(S_t / T) || softmax(S_s / T))`` of the
    row-wise distributions of the class-similarity matrices, mean over rows and images.

    Args:
        student, teacher: logits (B, C, H, W).
        masks: labels (B, H, W); ignored pixels are zeroed in both logit maps before the
            normalisation (they add nothing to norms or similarities), and an image without
            a labelled pixel is left out of the mean.
        temperature: T > 0.

    Returns:
        A scalar; a zero carrying the student's graph when no image has a labelled pixel.
    """
    valid = masks != ignore_index  # (B, H, W)
    keep = valid.flatten(1).any(dim=1)  # (B,) images with a labelled pixel
    if not bool(keep.any()):
        return student.sum() * 0.0
    log_s = F.log_softmax(similarity_rows(student, valid) / temperature, dim=2)  # (B, C, C)
    log_t = F.log_softmax(similarity_rows(teacher.detach(), valid) / temperature, dim=2)
    kl = (log_t.exp() * (log_t - log_s)).sum(dim=2)  # (B, C): one KL per row
    return kl.mean(dim=1)[keep].mean()


def kd_alpha(mode: str, base_alpha: float, student_ms: float, teacher_ms: float) -> float:
    """The weight of the logit KD term.

    ``none``: 0; ``constant``: ``base_alpha``; ``latency``: ``base_alpha * (2 - s / t)`` for
    student latency ``s`` and teacher latency ``t``, clipped to ``[base_alpha, 2 * base_alpha]``
    (a student as slow as the teacher, or slower, gets ``base_alpha``; one much faster, and
    so much smaller, gets up to twice as much of the teacher).

    Raises:
        ValueError: a latency that is not a positive finite number, a negative or non-finite
            ``base_alpha``, or an unknown mode.
    """
    for name, ms in (("student", student_ms), ("teacher", teacher_ms)):
        if not (math.isfinite(ms) and ms > 0):
            raise ValueError(f"{name} latency {ms} ms: must be a positive finite number")
    if not (math.isfinite(base_alpha) and base_alpha >= 0):
        raise ValueError(f"base_alpha {base_alpha}: must be a finite number >= 0")
    if mode == "none":
        return 0.0
    if mode == "constant":
        return float(base_alpha)
    if mode == "latency":
        raw = base_alpha * (2.0 - student_ms / teacher_ms)
        return float(min(max(raw, base_alpha), 2.0 * base_alpha))
    raise ValueError(f"kd mode {mode!r}: use one of {', '.join(KD_MODES)}")


def kd_total(ce: torch.Tensor, logit: torch.Tensor, feature: torch.Tensor,
             similarity: torch.Tensor, alpha: float, beta: float, gamma: float) -> torch.Tensor:
    """``CE + alpha * logit KD + beta * feature KD + gamma * AICSD``."""
    return ce + alpha * logit + beta * feature + gamma * similarity


class FeatureAdapters(nn.Module):
    """One 1x1 conv per decoder layer, mapping the student's layer output to the teacher's.

    Initialised to the identity (a rectangular one where channel counts differ) with zero
    bias: deterministic, no random draw, and feature KD starts as the plain MSE of the maps.

    Args:
        student_channels: channels of the student's five layer outputs (default: the space's
            C_out per layer, which every candidate projects back to).
        teacher_channels: the teacher's (default: the same).
    """

    def __init__(self, student_channels: Sequence[int] | None = None,
                 teacher_channels: Sequence[int] | None = None) -> None:
        super().__init__()
        c_s = list(student_channels or [s.c_out for s in LAYERS])
        c_t = list(teacher_channels or c_s)
        if len(c_s) != len(c_t):
            raise ValueError(f"{len(c_s)} student vs {len(c_t)} teacher layers")
        # skip_init: no default (random) initialisation, so the global RNG is left untouched
        convs = [skip_init(nn.Conv2d, s, t, 1) for s, t in zip(c_s, c_t, strict=True)]
        with torch.no_grad():
            for conv in convs:
                eye = torch.eye(conv.out_channels, conv.in_channels)  # (C_t, C_s)
                conv.weight.copy_(eye[:, :, None, None])  # (C_t, C_s, 1, 1)
                if conv.bias is not None:
                    conv.bias.zero_()
        self.convs = nn.ModuleList(convs)

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(feats) != len(self.convs):
            raise ValueError(f"expected {len(self.convs)} layer outputs, got {len(feats)}")
        return [conv(f) for conv, f in zip(self.convs, feats, strict=True)]
