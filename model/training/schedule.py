"""Learning rate per optimizer step: linear warm-up, then cosine decay.

The schedule is a pure function of the step number, so a resumed run only has
to know how many steps it has taken to continue on exactly the same curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sparsespikformer.simulator.errors import InputError


@dataclass(frozen=True)
class WarmupCosineSchedule:
    base_lr: float        # peak learning rate, reached at the end of warm-up
    min_lr: float         # floor of the cosine, and the first warm-up value
    warmup_steps: int
    total_steps: int

    def __post_init__(self) -> None:
        if self.total_steps <= 0:
            raise InputError(f"total_steps must be positive, got {self.total_steps}")
        if not 0 <= self.warmup_steps <= self.total_steps:
            raise InputError(f"warmup_steps must be in 0..{self.total_steps}, "
                             f"got {self.warmup_steps}")
        if self.min_lr < 0 or self.base_lr < self.min_lr:
            raise InputError(f"need 0 <= min_lr <= base_lr, got {self.min_lr}, {self.base_lr}")

    def lr_at(self, step: int) -> float:
        """Learning rate for optimizer step `step` (0-based)."""
        if step < self.warmup_steps:
            # min_lr at step 0, rising linearly to base_lr at step warmup_steps.
            return self.min_lr + (self.base_lr - self.min_lr) * step / self.warmup_steps
        decay_steps = self.total_steps - self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, decay_steps))
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))     # 1 -> 0
        return self.min_lr + (self.base_lr - self.min_lr) * cosine
