"""Batched training augmentation of the published recipes, with kornia.

The Spikformer recipes (timm's pipeline in the reference code) augment every training image
with a random crop, a horizontal flip, RandAugment and random erasing. Here the batch is
augmented at once by kornia's modules, on whatever device the batch is on:

* `RandomCrop` of the image size from the image zero-padded by `crop_padding` pixels;
* `RandAugment` with `randaugment_ops` operations of magnitude `randaugment_magnitude` on
  timm's scale of 10 (timm's `rand-m9-n1`: kornia's scale is 30, so m9 is kornia's 27,
  e.g. a rotation of 0.9 · 30° = 27°); timm's magnitude noise (`mstd`) is not modelled and
  kornia draws the operations once per batch (timm: per image);
* `RandomErasing` with probability `erase_prob` of one rectangle of 2-33 % of the area,
  filled with 0 after normalisation, i.e. the channel mean (timm's `remode const`).

The crop and RandAugment act on [0, 1] pixels before normalisation, erasing after it; the
flip is the data set's own (`BatchTransform.random_hflip`).

Randomness: kornia samples from torch's global generator, so `AugmentPlan.draw` takes one
seed from the run's seeded generator and samples every module's parameters for the whole
global batch inside `torch.random.fork_rng` seeded with it (the global generator is left
as it was). A resumed run therefore draws the same augmentations, and a rank that keeps
only some rows of the global batch (`rows`) applies exactly those rows' parameters: the
images do not depend on how many processes share the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparsespikformer.simulator.checks import check_fraction, check_int
from sparsespikformer.simulator.errors import InputError

# timm's RandAugment magnitude levels run 0..10; kornia's run over (0, 30).
TIMM_MAGNITUDE_LEVELS = 10
KORNIA_MAGNITUDE_LEVELS = 30
ERASE_FILL = 0.0     # after normalisation: the channel mean (timm's 'const' mode)
_SEED_BOUND = 2**62  # seeds drawn for kornia's sampling


@dataclass(frozen=True)
class AugmentConfig:
    """Which batched augmentations a training run applies (all off by default)."""

    crop_padding: int = 0          # random crop from the zero-padded image; 0: no crop
    randaugment_ops: int = 0       # RandAugment operations per batch (timm's n); 0: off
    randaugment_magnitude: int = 9  # timm's m, 1..9 on its scale of 10
    erase_prob: float = 0.0        # random erasing probability (timm's re_prob)

    def __post_init__(self) -> None:
        check_int(self.crop_padding, "augment.crop_padding", minimum=0)
        check_int(self.randaugment_ops, "augment.randaugment_ops", minimum=0, maximum=14)
        # kornia needs 0 < m < 30 on its scale, i.e. timm levels 1..9
        check_int(self.randaugment_magnitude, "augment.randaugment_magnitude", minimum=1,
                  maximum=TIMM_MAGNITUDE_LEVELS - 1)
        check_fraction(self.erase_prob, "augment.erase_prob")

    @property
    def active(self) -> bool:
        return bool(self.crop_padding or self.randaugment_ops or self.erase_prob)


def kornia_magnitude(timm_level: int) -> int:
    """timm's RandAugment level (of 10) on kornia's scale (of 30)."""
    return timm_level * KORNIA_MAGNITUDE_LEVELS // TIMM_MAGNITUDE_LEVELS


def randaugment_policy(channels: int) -> list:
    """kornia's RandAugment operations; on grey images without `color` (saturation needs
    three channels; PIL's colour enhancement of a grey image, which timm applies, is the
    identity)."""
    from kornia.augmentation.auto.rand_augment.rand_augment import default_policy

    if channels == 3:
        return list(default_policy)
    return [sub for sub in default_policy if sub[0][0] != "color"]


class BatchAugment:
    """The kornia modules of an `AugmentConfig` for (C, size, size) images."""

    def __init__(self, config: AugmentConfig, image_shape: tuple[int, ...]) -> None:
        import kornia.augmentation as K
        from kornia.augmentation.auto import RandAugment

        if len(image_shape) != 3:
            raise InputError(f"augmentation needs images (C, H, W), got samples of shape "
                             f"{tuple(image_shape)} (event frames are not augmented)")
        if config.randaugment_ops and image_shape[0] not in (1, 3):
            raise InputError(f"RandAugment needs 1- or 3-channel images, got {image_shape[0]}")
        self.config = config
        size = tuple(image_shape[1:])
        self.before: list[torch.nn.Module] = []     # on [0, 1] pixels
        self.after: list[torch.nn.Module] = []      # on normalised images
        if config.crop_padding:
            self.before.append(K.RandomCrop(size, padding=config.crop_padding, fill=0.0))
        if config.randaugment_ops:
            self.before.append(RandAugment(n=config.randaugment_ops,
                                           m=kornia_magnitude(config.randaugment_magnitude),
                                           policy=randaugment_policy(image_shape[0])))
        if config.erase_prob:
            self.after.append(K.RandomErasing(p=config.erase_prob, value=ERASE_FILL))

    def draw(self, generator: torch.Generator, draws: int,
             image_shape: tuple[int, ...]) -> AugmentPlan:
        """Sample the parameters of every module for a global batch of `draws` images."""
        seed = int(torch.randint(_SEED_BOUND, (1,), generator=generator))
        shape = torch.Size((draws, *image_shape))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            before = [module.forward_parameters(shape) for module in self.before]
            after = [module.forward_parameters(shape) for module in self.after]
        return AugmentPlan(self, before, after)


@dataclass(frozen=True)
class AugmentPlan:
    """One global batch's sampled augmentation parameters."""

    augment: BatchAugment
    before_params: list
    after_params: list

    def before_normalize(self, images: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        return _apply(self.augment.before, self.before_params, images, rows)

    def after_normalize(self, images: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        return _apply(self.augment.after, self.after_params, images, rows)


def _apply(modules, params, images: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """images (b, C, H, W): rows `rows` of the global batch (None: all of it)."""
    for module, module_params in zip(modules, params):
        images = module(images, params=take_rows(module_params, rows, images))
    return images


def take_rows(params, rows: torch.Tensor | None, images: torch.Tensor):
    """kornia parameters (a dict of per-image tensors, or a list of named items holding
    them) restricted to `rows` and moved to the images' device.

    Every per-image tensor has the global batch as its first axis; `forward_input_shape`
    is the shape of the batch the module transforms, i.e. now the rows' batch.
    """
    from kornia.augmentation.container.params import ParamItem

    if isinstance(params, list):
        return [ParamItem(item.name, take_rows(item.data, rows, images)) for item in params]
    if not isinstance(params, dict):
        return params
    taken = {}
    for key, value in params.items():
        if key == "forward_input_shape":
            value = torch.tensor(images.shape, dtype=value.dtype)
        elif torch.is_tensor(value) and rows is not None:
            value = value[rows.to(value.device)]
        taken[key] = value.to(images.device) if torch.is_tensor(value) else value
    return taken
