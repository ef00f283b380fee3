"""Final training of the selected architecture (and, later, latency-aware distillation)."""

from linas.distill.train import FinalTrainConfig, evaluate_model, train_final

__all__ = ["FinalTrainConfig", "evaluate_model", "train_final"]
