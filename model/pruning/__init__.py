"""Lottery-ticket weight pruning: masks (magnitude and random pruning, enforcement during
training) and iterative magnitude pruning (IMP) rounds with late rewinding, their baselines
and their resumable round store."""

from sparsespikformer.model.pruning.lottery import LotteryConfig, LotteryTask, run_lottery
from sparsespikformer.model.pruning.masks import (
    full_masks,
    load_masks,
    magnitude_prune,
    random_prune,
    save_masks,
    weight_sparsity,
)

__all__ = ["LotteryConfig", "LotteryTask", "full_masks", "load_masks", "magnitude_prune",
           "random_prune", "run_lottery", "save_masks", "weight_sparsity"]
