"""Training: the loop (`train`, `TrainConfig`, `evaluate`), learning-rate schedules, seeding,
named recipes, training checkpoints and the token selectors' distillation training."""

from sparsespikformer.model.training.loop import TrainConfig, TrainHooks, evaluate, train
from sparsespikformer.model.training.selector_training import SelectorLossConfig, train_selector

__all__ = ["SelectorLossConfig", "TrainConfig", "TrainHooks", "evaluate", "train",
           "train_selector"]
