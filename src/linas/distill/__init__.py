"""Final training of the selected architecture, with latency-aware distillation (I5)."""

from linas.distill.kd import (
    KD_MODES,
    FeatureAdapters,
    aicsd,
    feature_kd,
    kd_alpha,
    kd_total,
    logit_kd,
)
from linas.distill.train import (
    Distillation,
    FinalTrainConfig,
    check_final_options,
    evaluate_model,
    train_final,
)

__all__ = [
    "KD_MODES",
    "Distillation",
    "FeatureAdapters",
    "FinalTrainConfig",
    "aicsd",
    "check_final_options",
    "evaluate_model",
    "feature_kd",
    "kd_alpha",
    "kd_total",
    "logit_kd",
    "train_final",
]
