"""Named model presets: ``create_model("spikformer_4_384_cifar10")``.

Names read ``spikformer_<depth>_<embed dim>_<dataset>``. Heads follow the paper (12 for
D = 384 and 768, 8 for 256 and 512, 16 for the DVS models); T = 4 for static images, 16 for
event data. Each preset is a config factory registered by name in
`sparsespikformer.model.registry`; `sparse_presets` adds the ``sparsespikformer_*`` variants.

Parameter counts are exactly the reference architecture's without its unused LayerNorms
(e.g. Spikformer-4-256 has 4,155,178); the paper's table rounds some of these counts to two
decimals of a million and truncates others (4.15M, 5.76M, 16.81M, 29.68M are truncated,
36.01M and 66.34M rounded), see tests/model/test_presets.py.
"""

from __future__ import annotations

from sparsespikformer.model.nn.config import SpikformerConfig
from sparsespikformer.model.registry import register


def _static(form: str, depth: int, dim: int, heads: int, classes: int,
            img_size: int) -> SpikformerConfig:
    return SpikformerConfig(
        form=form, img_size=img_size, in_channels=3, num_classes=classes, embed_dim=dim,
        num_heads=heads, depth=depth, timesteps=4,
    )


def _dvs(classes: int) -> SpikformerConfig:
    return SpikformerConfig(
        form="dvs", img_size=128, in_channels=2, num_classes=classes, embed_dim=256,
        num_heads=16, depth=2, timesteps=16,
    )


@register
def spikformer_4_256_cifar10() -> SpikformerConfig:
    return _static("cifar", depth=4, dim=256, heads=8, classes=10, img_size=32)


@register
def spikformer_2_384_cifar10() -> SpikformerConfig:
    return _static("cifar", depth=2, dim=384, heads=12, classes=10, img_size=32)


@register
def spikformer_4_384_cifar10() -> SpikformerConfig:
    return _static("cifar", depth=4, dim=384, heads=12, classes=10, img_size=32)


@register
def spikformer_4_384_cifar100() -> SpikformerConfig:
    return _static("cifar", depth=4, dim=384, heads=12, classes=100, img_size=32)


@register
def spikformer_8_384_imagenet() -> SpikformerConfig:
    return _static("imagenet", depth=8, dim=384, heads=12, classes=1000, img_size=224)


@register
def spikformer_6_512_imagenet() -> SpikformerConfig:
    return _static("imagenet", depth=6, dim=512, heads=8, classes=1000, img_size=224)


@register
def spikformer_8_512_imagenet() -> SpikformerConfig:
    return _static("imagenet", depth=8, dim=512, heads=8, classes=1000, img_size=224)


@register
def spikformer_10_512_imagenet() -> SpikformerConfig:
    return _static("imagenet", depth=10, dim=512, heads=8, classes=1000, img_size=224)


@register
def spikformer_8_768_imagenet() -> SpikformerConfig:
    return _static("imagenet", depth=8, dim=768, heads=12, classes=1000, img_size=224)


@register
def spikformer_2_256_dvs128() -> SpikformerConfig:
    return _dvs(classes=11)  # DVS128 Gesture: 11 classes


@register
def spikformer_2_256_cifar10dvs() -> SpikformerConfig:
    return _dvs(classes=10)


@register
def spikformer_4_64_digits() -> SpikformerConfig:
    # scikit-learn digits (8x8, one channel) upscaled x2 to 16x16; a single max-pool after the
    # last SPS conv gives 8x8 = 64 tokens, one per original digit pixel. T=2 (not 4): half the
    # cost per epoch, so digits_recipe() reaches >= 95% in about a minute on 2 CPU cores
    # (T=4 needs ~2 minutes for the same accuracy; benchmarks/digits_training.py).
    return SpikformerConfig(
        form="cifar", img_size=16, in_channels=1, num_classes=10, embed_dim=64, num_heads=4,
        depth=4, timesteps=2, sps_pool_after=(3,),
    )
