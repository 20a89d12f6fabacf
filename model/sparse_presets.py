"""SparseSpikformer presets: a Spikformer with spiking token selectors.

`sparsespikformer_<depth>_<dim>_<dataset>` is the dense preset of the same name
plus selectors before blocks 1, 2, 3 (the 2nd, 3rd and 4th of 4, as in the
paper), keep ratio ρ = 0.7 and the learned scorer by default. `create_model`
overrides `keep_ratio`, `scorer` and `selector_blocks`, e.g.

    create_model("sparsespikformer_4_64_digits", keep_ratio=0.5, scorer="firing_rate")

A sparse preset's weights are its dense counterpart's plus the selector MLPs,
so a trained dense checkpoint initialises the student (see selector_training).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

import sparsespikformer.model.presets  # noqa: F401  (registers the dense presets extended here)
from sparsespikformer.model.nn.config import SpikformerConfig
from sparsespikformer.model.nn.spikformer import Spikformer
from sparsespikformer.model.nn.token_selector import SCORERS, build_token_selectors
from sparsespikformer.model.registry import get_preset_config, register_preset
from sparsespikformer.simulator.errors import InputError

SELECTOR_OVERRIDES = ("keep_ratio", "scorer", "selector_blocks", "selector_seed")
SPARSE_PREFIX = "sparsespikformer_"
DENSE_PREFIX = "spikformer_"


@dataclass(frozen=True)
class SparseSpikformerConfig(SpikformerConfig):
    """A SpikformerConfig plus where and how tokens are selected."""

    keep_ratio: float = 0.7                        # ρ; the k-th selector keeps int(N0 · ρ^k)
    scorer: str = "learned"                        # 'learned', 'firing_rate' or 'random'
    selector_blocks: tuple[int, ...] = (1, 2, 3)   # a selector runs before each of these blocks
    selector_seed: int = 0                         # the random scorer's seed

    def _validate(self) -> None:
        super()._validate()
        object.__setattr__(self, "selector_blocks", tuple(self.selector_blocks))
        if self.scorer not in SCORERS:
            raise InputError(f"SparseSpikformerConfig.scorer: unknown {self.scorer!r}; "
                             f"valid: {SCORERS}")
        if not 0.0 < self.keep_ratio <= 1.0:
            raise InputError(f"SparseSpikformerConfig.keep_ratio must be in (0, 1], "
                             f"got {self.keep_ratio}")
        blocks = self.selector_blocks
        if not blocks or any(b not in range(self.depth) for b in blocks) \
                or list(blocks) != sorted(set(blocks)):
            raise InputError(f"SparseSpikformerConfig.selector_blocks must be increasing block "
                             f"indices in 0..{self.depth - 1}, got {blocks}")

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["selector_blocks"] = list(self.selector_blocks)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SparseSpikformerConfig:
        data = dict(data)
        if data.get("selector_blocks") is not None:
            data["selector_blocks"] = tuple(data["selector_blocks"])
        return super().from_dict(data)


def build_sparse_spikformer(config: SparseSpikformerConfig) -> Spikformer:
    """A Spikformer whose `token_selectors` hold one selector per `selector_blocks` entry."""
    model = Spikformer(config)
    model.token_selectors.update(build_token_selectors(
        dim=config.embed_dim, n_tokens0=config.num_tokens, blocks=config.selector_blocks,
        keep_ratio=config.keep_ratio, scorer=config.scorer, seed=config.selector_seed))
    return model


def dense_counterpart(model: nn.Module) -> nn.Module:
    """The same model without token selectors (a fresh one: weights not copied)."""
    config = model.config
    if not isinstance(config, SparseSpikformerConfig):
        return Spikformer(config)
    base_fields = {f.name for f in dataclasses.fields(SpikformerConfig)}
    return Spikformer(SpikformerConfig(**{name: getattr(config, name) for name in base_fields}))


def _sparse_factory(dense_preset: str, blocks: tuple[int, ...]
                    ) -> Callable[[], SparseSpikformerConfig]:
    def factory() -> SparseSpikformerConfig:
        dense = get_preset_config(dense_preset)
        fields = {f.name: getattr(dense, f.name) for f in dataclasses.fields(dense)}
        return SparseSpikformerConfig(**fields, selector_blocks=blocks)
    return factory


# The paper's CIFAR models, the DVS ones, and the CPU-sized digits model.
SPARSE_PRESETS = (
    "sparsespikformer_4_384_cifar10",
    "sparsespikformer_4_384_cifar100",
    "sparsespikformer_4_256_cifar10",
    "sparsespikformer_2_256_dvs128",
    "sparsespikformer_2_256_cifar10dvs",
    "sparsespikformer_4_64_digits",
)


def _register_all() -> None:
    for name in SPARSE_PRESETS:
        dense = DENSE_PREFIX + name[len(SPARSE_PREFIX):]
        # before every block but the first: blocks 1, 2, 3 of 4 (paper); block 1 of 2 (DVS)
        blocks = tuple(range(1, get_preset_config(dense).depth))
        register_preset(name, _sparse_factory(dense, blocks),
                        model_builder=build_sparse_spikformer,
                        extra_overrides=SELECTOR_OVERRIDES)


_register_all()
