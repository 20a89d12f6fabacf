"""SpikformerConfig: every number that fixes a Spikformer's structure.

Three forms follow the three model files of the reference code (ZK-Zhou/spikformer):

* ``cifar``    (cifar10/model.py): Q/K/V/proj/MLP are ``nn.Linear`` with bias + BatchNorm1d;
  the patch embedding max-pools after its 3rd and 4th conv (32x32 -> 8x8 tokens).
* ``imagenet`` (imagenet/model.py): Q/K/V are bias-free 1x1 ``Conv1d``, proj a 1x1 ``Conv1d``
  with bias (+ BatchNorm1d), the MLP 1x1 ``Conv2d`` with bias + BatchNorm2d; max-pool after
  every patch-embedding conv (224x224 -> 14x14).
* ``dvs``      (cifar10dvs/model.py): like ``imagenet`` but the MLP is 1x1 ``Conv1d`` +
  BatchNorm1d, the attention scale is 0.25 and the input is event frames (B, T, 2, H, W).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from sparsespikformer.simulator.errors import InputError

FORMS = ("cifar", "imagenet", "dvs")
ATTN_ORDERS = ("qk_first", "kv_first")
NUM_SPS_CONVS = 4

# Which of the four patch-embedding convs are followed by a 3x3/2 max-pool, per form.
DEFAULT_POOL_AFTER = {"cifar": (2, 3), "imagenet": (0, 1, 2, 3), "dvs": (0, 1, 2, 3)}
# SSA scale of each reference file (no softmax, so this is the only normalisation).
DEFAULT_ATTN_SCALE = {"cifar": 0.125, "imagenet": 0.125, "dvs": 0.25}


@dataclass(frozen=True)
class SpikformerConfig:
    """Structure of one Spikformer. Defaults give Spikformer-4-384 for CIFAR-10.

    ``sps_pool_after`` and ``attn_scale`` default (None) to the form's reference values.
    ``attn_order`` picks how ``Q Kᵀ V`` is associated: ``qk_first`` = (Q Kᵀ) V, as the
    CIFAR and DVS code and the papers' GFLOPs count it; ``kv_first`` = Q (Kᵀ V), as
    imagenet/model.py evaluates it. Both give bit-identical spikes in float32 (operands are
    spikes and the scale is a power of two); they differ only in MACs.
    """

    form: str = "cifar"
    img_size: int = 32
    in_channels: int = 3
    num_classes: int = 10
    embed_dim: int = 384
    num_heads: int = 12
    mlp_ratio: float = 4.0
    depth: int = 4
    timesteps: int = 4
    sps_pool_after: tuple[int, ...] | None = None
    attn_scale: float | None = None
    attn_order: str = "qk_first"
    lif_tau: float = 2.0
    lif_threshold: float = 1.0
    attn_lif_threshold: float = 0.5
    surrogate_alpha: float = 4.0

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise InputError(f"SpikformerConfig.form: unknown form {self.form!r}; valid: {FORMS}")
        if self.sps_pool_after is None:
            object.__setattr__(self, "sps_pool_after", DEFAULT_POOL_AFTER[self.form])
        object.__setattr__(self, "sps_pool_after", tuple(sorted(set(self.sps_pool_after))))
        if self.attn_scale is None:
            object.__setattr__(self, "attn_scale", DEFAULT_ATTN_SCALE[self.form])
        self._validate()

    def _validate(self) -> None:
        for name in ("img_size", "in_channels", "num_classes", "embed_dim", "num_heads",
                     "depth", "timesteps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(
                    f"SpikformerConfig.{name} must be a positive integer, got {value!r}"
                )
        if self.embed_dim % 8:
            raise InputError(
                f"SpikformerConfig.embed_dim must be a multiple of 8 (patch-embedding widths "
                f"D/8, D/4, D/2), got {self.embed_dim}"
            )
        if self.embed_dim % self.num_heads:
            raise InputError(
                f"SpikformerConfig.embed_dim {self.embed_dim} is not divisible by "
                f"num_heads {self.num_heads}"
            )
        if self.mlp_ratio <= 0 or int(self.embed_dim * self.mlp_ratio) < 1:
            raise InputError(f"SpikformerConfig.mlp_ratio must be positive, got {self.mlp_ratio}")
        if any(i not in range(NUM_SPS_CONVS) for i in self.sps_pool_after):
            raise InputError(
                f"SpikformerConfig.sps_pool_after entries must be conv indices 0..3, "
                f"got {self.sps_pool_after}"
            )
        if self.img_size % self.downsample:
            raise InputError(
                f"SpikformerConfig.img_size {self.img_size} is not divisible by the patch "
                f"embedding's downsampling factor {self.downsample}"
            )
        if self.attn_order not in ATTN_ORDERS:
            raise InputError(
                f"SpikformerConfig.attn_order: unknown {self.attn_order!r}; valid: {ATTN_ORDERS}"
            )
        if self.lif_tau <= 0:
            raise InputError(f"SpikformerConfig.lif_tau must be positive, got {self.lif_tau}")

    @property
    def downsample(self) -> int:
        """Side-length reduction of the patch embedding (2 per max-pool)."""
        return 2 ** len(self.sps_pool_after)

    @property
    def grid_size(self) -> int:
        """Tokens per side after the patch embedding."""
        return self.img_size // self.downsample

    @property
    def num_tokens(self) -> int:
        return self.grid_size**2

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    @property
    def mlp_hidden_dim(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples as lists), e.g. for a trace manifest."""
        out = asdict(self)
        out["sps_pool_after"] = list(self.sps_pool_after)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpikformerConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"SpikformerConfig: unknown keys {unknown}; valid: {sorted(known)}")
        data = dict(data)
        if data.get("sps_pool_after") is not None:
            data["sps_pool_after"] = tuple(data["sps_pool_after"])
        return cls(**data)
