"""Training a selector-equipped Spikformer from its trained dense teacher.

SparseSpikformer's recipe (after DynamicViT; docs/references.md): the student starts as a copy of
the trained dense model (its token selectors freshly initialised) and is
trained with

    loss = CE(student, labels)
         + 2.0 · mean over selectors of mean over the batch of (kept fraction - ρ^k)²
         + 0.5 · KL(teacher ‖ student)

The kept fraction of the k-th selector is its training-mode keep mask summed
over tokens, divided by N0; it carries the straight-through gradient of the
Gumbel-softmax decisions, so the ratio term steers the learned scorer. The KL
term is DynamicViT's distillation loss, `F.kl_div(log p_student, log p_teacher,
log_target=True)`, i.e. the teacher's distribution is the reference. With the
`firing_rate` and `random` scorers the ratio term is constant (their masks keep
exactly int(N0 · ρ^k) tokens) and the same loss fine-tunes the backbone to the
dropped tokens.

The loss plugs into `training.train(loss_fn=...)`, so selector training gets
the same checkpoints, resume and progress bars as every other run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from sparsespikformer.model.data import Dataset
from sparsespikformer.model.nn.token_selector import token_selectors_of
from sparsespikformer.model.training.devices import Runtime
from sparsespikformer.model.training.loop import (
    CHECKPOINT_NAME,
    ModelHook,
    TrainConfig,
    soft_cross_entropy,
    train,
)
from sparsespikformer.simulator.errors import InputError

logger = logging.getLogger(__name__)

SELECTOR_PREFIX = "token_selectors."


@dataclass(frozen=True)
class SelectorLossConfig:
    ratio_weight: float = 2.0      # SparseSpikformer / DynamicViT
    distill_weight: float = 0.5

    def __post_init__(self) -> None:
        if self.ratio_weight < 0 or self.distill_weight < 0:
            raise InputError(f"loss weights must be >= 0, got ratio {self.ratio_weight}, "
                             f"distill {self.distill_weight}")


def keep_ratio_loss(model: nn.Module) -> torch.Tensor:
    """Mean over selectors of the batch-mean squared gap (kept fraction - ρ^k)."""
    terms = []
    for selector in token_selectors_of(model):
        fraction = selector.last_kept_fraction                       # (B,)
        if fraction is None:
            continue
        terms.append(((fraction - selector.target_keep_fraction) ** 2).mean())
    if not terms:
        return torch.zeros(())
    return torch.stack(terms).mean()


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor
                      ) -> torch.Tensor:
    """KL(teacher ‖ student), mean over the batch."""
    return F.kl_div(F.log_softmax(student_logits, dim=-1), F.log_softmax(teacher_logits, dim=-1),
                    reduction="batchmean", log_target=True)


class SelectorLoss:
    """`train()`'s loss_fn: CE on the soft targets + ratio MSE + KL to the teacher.

    `teacher` None drops the KL term (e.g. a parameter-free scorer trained alone).
    """

    def __init__(self, teacher: nn.Module | None, config: SelectorLossConfig) -> None:
        self.teacher = teacher
        self.config = config
        if teacher is not None:
            teacher.eval()
            for p in teacher.parameters():
                p.requires_grad_(False)

    def __call__(self, model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                 logits: torch.Tensor) -> torch.Tensor:
        loss = soft_cross_entropy(logits, targets)
        if self.config.ratio_weight > 0:
            loss = loss + self.config.ratio_weight * keep_ratio_loss(model)
        if self.teacher is not None and self.config.distill_weight > 0:
            _move_to(self.teacher, images.device)
            with torch.no_grad():
                teacher_logits = self.teacher(images)                     # (B, K)
            loss = loss + self.config.distill_weight * distillation_loss(logits, teacher_logits)
        return loss


def _move_to(module: nn.Module, device: torch.device) -> None:
    """The teacher follows the student's batches to their device (once)."""
    first = next(iter(module.parameters()), None)
    if first is not None and first.device != device:
        module.to(device)


def init_student_from_teacher(student: nn.Module, teacher_state: dict) -> None:
    """Copy every teacher weight into the student; only selector weights may be new."""
    try:
        result = student.load_state_dict(teacher_state, strict=False)
    except RuntimeError as err:   # shapes differ
        summary = " ".join(str(err).split())[:300]
        raise InputError(f"teacher weights do not fit the student ({summary})") from err
    not_selector = [k for k in result.missing_keys if not k.startswith(SELECTOR_PREFIX)]
    if not_selector or result.unexpected_keys:
        raise InputError(f"teacher weights do not fit the student: missing {not_selector[:3]}, "
                         f"unexpected {list(result.unexpected_keys)[:3]}")


def train_selector(student: nn.Module, teacher: nn.Module, train_set: Dataset,
                   test_set: Dataset, config: TrainConfig, out_dir: str | Path,
                   loss_config: SelectorLossConfig = SelectorLossConfig(),
                   progress: bool = True, *,
                   after_backward: ModelHook | None = None,
                   after_optimizer_step: ModelHook | None = None,
                   metadata: dict | None = None, runtime: Runtime | None = None
                   ) -> pd.DataFrame:
    """Start `student` from `teacher` (unless resuming) and train it with `SelectorLoss`."""
    if not (Path(out_dir) / CHECKPOINT_NAME).is_file():
        init_student_from_teacher(student, teacher.state_dict())
    return train(student, train_set, test_set, config, out_dir, progress=progress,
                 loss_fn=SelectorLoss(teacher, loss_config), after_backward=after_backward,
                 after_optimizer_step=after_optimizer_step, metadata=metadata,
                 runtime=runtime)


def load_teacher_for(student: nn.Module, path: str | Path, *, ema: bool = False
                     ) -> nn.Module:
    """The dense teacher of `student` (same model without selectors), weights from `path`:
    any checkpoint the one loader reads (`training/weights.py`); `ema` takes its EMA copy."""
    from sparsespikformer.model.sparse_presets import dense_counterpart
    from sparsespikformer.model.training.weights import load_model_weights

    teacher = dense_counterpart(student)
    load_model_weights(teacher, path, ema=ema, model_label="the dense teacher (--teacher)")
    return teacher.eval()


def student_state_from_teacher(student: nn.Module, teacher: nn.Module) -> dict:
    """`student`'s state dict with every weight the teacher has copied from it."""
    init_student_from_teacher(student, teacher.state_dict())
    return {k: v.detach().clone() for k, v in student.state_dict().items()}


def selector_overrides(preset: str, keep_ratio: float | None, scorer: str | None) -> dict:
    """`create_model` overrides for the CLI's --keep-ratio / --scorer (selector presets only)."""
    from sparsespikformer.model.sparse_presets import SPARSE_PREFIX

    overrides = {name: value for name, value in (("keep_ratio", keep_ratio), ("scorer", scorer))
                 if value is not None}
    if overrides and not preset.startswith(SPARSE_PREFIX):
        raise InputError(f"--keep-ratio and --scorer need a {SPARSE_PREFIX}* preset, "
                         f"got {preset}")
    return overrides
