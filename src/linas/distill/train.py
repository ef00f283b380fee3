"""Final training of an extracted architecture: CE, plus latency-aware KD (I5) from a frozen
teacher when a :class:`Distillation` is given (see :mod:`linas.distill.kd`)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from linas._errors import ConfigError, closest
from linas.compute import CPU, Compute, shard_batches, split_confusion
from linas.data.features import FeatureSet
from linas.distill.kd import KD_MODES, FeatureAdapters, aicsd, feature_kd, kd_total, logit_kd
from linas.metrics import mean_iou, per_class_iou, pixel_accuracy
from linas.space import Arch
from linas.supernet import SegmentationModel


@dataclass(frozen=True)
class FinalTrainConfig:
    """Hyper-parameters of the final training (the ``final`` section of a run config).

    ``kd``: ``none`` (CE only, the baseline), ``constant`` (alpha = ``base_alpha``) or
    ``latency`` (alpha = ``base_alpha * (2 - student_ms / teacher_ms)``, clipped to
    ``[base_alpha, 2 * base_alpha]``); ``beta`` and ``gamma`` weigh feature KD and AICSD in
    both KD modes. ``teacher``: an architecture string (None: the largest subnet,
    ``Conv7x7_w100`` in all five layers). ``teacher_epochs``: None fine-tunes the teacher
    with this CE recipe for ``epochs`` epochs before it is frozen, N for N epochs, 0 uses it
    exactly as extracted from the supernet.

    Raises:
        ConfigError: an unknown ``kd`` mode, a bad ``teacher`` string, or a value out of range.
    """

    epochs: int = 15
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    kd: str = "none"  # none | constant | latency
    T: float = 4.0  # KD temperature (logit KD and AICSD)
    # Defaults sized from the terms' magnitudes at the start of final training (synthetic
    # benchmark, benchmarks/kd.py): CE ~1.1, logit KD ~0.2-0.35, feature MSE ~3-4 (BN-scaled
    # maps), AICSD ~0.003-0.015. Each weighted KD term then adds ~5-40% of the CE: the CE
    # stays the objective and KD a pull towards the teacher.
    # Hinton's T^2 keeps logit KD on the CE's scale; 0.5 is half the CE's weight, and the
    # latency rule spans 0.5..1.0, never more than the CE itself.
    base_alpha: float = 0.5
    beta: float = 0.1  # feature MSE is ~3x the CE at the start
    # AICSD compares rows of cosine similarities in [-1, 1] softened by T = 4, so its KL is
    # ~1/T^2 of logit KD's (and has no T^2 factor): a larger weight gives it a similar pull.
    gamma: float = 20.0
    teacher: str | None = None
    teacher_epochs: int | None = None

    def __post_init__(self) -> None:
        check_final_options(self)


def check_final_options(cfg: FinalTrainConfig) -> None:
    """Validate the KD options of ``cfg``.

    Raises:
        ConfigError: naming the key, the value and the valid values.
    """
    if cfg.kd not in KD_MODES:
        raise ConfigError(f"final.kd = {cfg.kd!r}{closest(str(cfg.kd), KD_MODES)}: use one of "
                          f"{', '.join(KD_MODES)}")
    if not (math.isfinite(cfg.T) and cfg.T > 0):
        raise ConfigError(f"final.T = {cfg.T}: the KD temperature must be a number > 0")
    for key in ("base_alpha", "beta", "gamma"):
        value = getattr(cfg, key)
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"final.{key} = {value}: a KD weight must be a number >= 0")
    if cfg.teacher_epochs is not None and cfg.teacher_epochs < 0:
        raise ConfigError(f"final.teacher_epochs = {cfg.teacher_epochs}: use an integer >= 0, "
                          "or null to fine-tune the teacher for final.epochs epochs")
    if cfg.teacher is not None:
        try:
            Arch.parse(cfg.teacher)
        except ConfigError as exc:
            raise ConfigError(f"final.teacher = {cfg.teacher!r}: {exc}; or leave it unset for "
                              "the largest subnet") from None


@dataclass
class Distillation:
    """What KD training needs besides the student: the frozen teacher, the loss weights and
    temperature, and the feature adapters (trained with the student, not part of it).

    The teacher decodes the same encoder features as the student (with a frozen encoder the
    two encoders are the same; with ``encoder.finetune`` the student's features are used).
    """

    teacher: SegmentationModel
    alpha: float
    beta: float
    gamma: float
    temperature: float
    adapters: FeatureAdapters = field(default_factory=FeatureAdapters)

    def __post_init__(self) -> None:
        self.teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)

    @classmethod
    def from_config(cls, teacher: SegmentationModel, alpha: float,
                    cfg: FinalTrainConfig) -> Distillation:
        return cls(teacher, alpha, cfg.beta, cfg.gamma, cfg.T)

    def losses(self, model: SegmentationModel, feats: list[torch.Tensor], masks: torch.Tensor,
               share: float, ignore_index: int) -> dict[str, torch.Tensor]:
        """This rank's share of every term and of their weighted total (``loss``)."""
        from linas.search.base import shared_ce

        logits, outs = model.decode_with_features(feats)
        self.teacher.eval()
        with torch.no_grad():
            t_logits, t_outs = self.teacher.decode_with_features(feats)
        terms = {"ce": shared_ce(logits, masks, share, ignore_index),
                 "logit_kd": logit_kd(logits, t_logits, masks, self.temperature,
                                      ignore_index) * share,
                 "feature_kd": feature_kd(self.adapters(outs), t_outs) * share,
                 "aicsd": aicsd(logits, t_logits, masks, self.temperature, ignore_index) * share}
        terms["loss"] = kd_total(terms["ce"], terms["logit_kd"], terms["feature_kd"],
                                 terms["aicsd"], self.alpha, self.beta, self.gamma)
        return terms


def train_final(model: SegmentationModel, train: FeatureSet, config: FinalTrainConfig,
                ignore_index: int = 255, on_step: Callable[[], None] | None = None,
                compute: Compute = CPU, distill: Distillation | None = None
                ) -> list[dict[str, Any]]:
    """Train the decoder of ``model`` (the encoder stays as it is in ``train``; the model is
    on ``compute``'s device) with a cosine learning-rate schedule: CE, or with ``distill`` the
    KD total (its adapters trained by the same optimizer, its teacher frozen).

    Returns:
        Per-epoch mean losses of the whole batches (under torchrun too): ``ce``; with
        ``distill`` also ``logit_kd``, ``feature_kd``, ``aicsd`` (unweighted) and ``loss``.
    """
    from linas.search.base import shared_ce, step_with

    gen = torch.Generator().manual_seed(config.seed)
    params = [p for p in model.parameters() if p.requires_grad]  # a frozen encoder has none
    if distill is not None:
        distill.adapters.to(compute.device)
        params += list(distill.adapters.parameters())
    opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    scaler = compute.scaler()
    steps = config.epochs * -(-len(train) // config.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1))
    history: list[dict[str, Any]] = []
    for epoch in range(config.epochs):
        model.train()
        if not any(p.requires_grad for p in model.encoder.parameters()):
            model.encoder.eval()  # a frozen encoder keeps its BN statistics
        sums: dict[str, list[float]] = {}
        for share, (feats, masks) in shard_batches(train, config.batch_size, gen, compute):
            with compute.autocast():
                if distill is None:
                    terms = {"ce": shared_ce(model.decode(feats), masks, share, ignore_index)}
                else:
                    terms = distill.losses(model, feats, masks, share, ignore_index)
            loss = terms.get("loss", terms["ce"])
            opt.zero_grad(set_to_none=True)
            step_with(loss, opt, params, compute, scaler)
            sched.step()
            for key, value in terms.items():
                sums.setdefault(key, []).append(float(value.detach()))
            if on_step is not None:
                on_step()
        history.append({"epoch": epoch, **{key: _global_mean(values, compute)
                                           for key, values in sums.items()}})
    compute.sync_buffers(model)
    return history


def _global_mean(values: list[float], compute: Compute) -> float:
    """The mean over steps of per-step values summed over the ranks."""
    total = compute.sum_(torch.tensor(values, dtype=torch.float64, device=compute.device))
    return float(total.mean())


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
