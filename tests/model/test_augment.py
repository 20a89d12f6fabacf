"""Batched augmentation (kornia) and the sharded batch stream.

Oracles: closed forms of each augmentation's distribution (uniform crop offsets over the
2p + 1 positions of a p-pixel padding, an erasing probability, timm's magnitude scale), a
brute-force search for the crop offset, and the single-process batch as the oracle of
every shard of it.
"""

from __future__ import annotations

import pytest
import torch

from sparsespikformer.model.data.augment import (
    ERASE_FILL,
    AugmentConfig,
    BatchAugment,
    kornia_magnitude,
)
from sparsespikformer.model.data.base import BatchTransform, DatasetInfo, InMemoryDataset
from sparsespikformer.model.training.batches import EpochBatches
from sparsespikformer.model.training.distributed import Shard

pytest.importorskip("kornia")

SHAPE = (3, 12, 12)


def _plan(config: AugmentConfig, draws: int, seed: int, shape=SHAPE):
    return BatchAugment(config, shape).draw(torch.Generator().manual_seed(seed), draws, shape)


def _unique_pixels(count: int, shape=SHAPE) -> torch.Tensor:
    """Images whose pixels are all distinct and positive (so a crop's offset is unique)."""
    values = torch.arange(1, count * int(torch.tensor(shape).prod()) + 1, dtype=torch.float32)
    return (values / values.max()).view(count, *shape)


def _crop_offset(out: torch.Tensor, image: torch.Tensor, padding: int) -> tuple[int, int]:
    """Brute force: the (dy, dx) with out == zero-padded image[dy:dy+H, dx:dx+W]."""
    height, width = image.shape[-2:]
    padded = torch.nn.functional.pad(image, (padding,) * 4)
    found = [(dy, dx) for dy in range(2 * padding + 1) for dx in range(2 * padding + 1)
             if torch.equal(padded[:, dy:dy + height, dx:dx + width], out)]
    assert len(found) == 1, found
    return found[0]


def test_crop_offsets_are_uniform_within_the_padding():
    """Offsets uniform on {0..2p}² (kornia pads p pixels of zeros each side): mean p, and
    each of the 2p+1 rows and columns appears. p = 2, 300 crops: the mean offset's standard
    deviation is sqrt(((2p+1)² - 1) / 12 / 300) = 0.082."""
    padding, count = 2, 300
    images = _unique_pixels(count)
    plan = _plan(AugmentConfig(crop_padding=padding), count, seed=0)
    out = plan.before_normalize(images, None)
    offsets = torch.tensor([_crop_offset(out[i], images[i], padding) for i in range(count)],
                           dtype=torch.float64)                      # (count, 2)
    assert offsets.min() == 0 and offsets.max() == 2 * padding
    assert set(offsets[:, 0].tolist()) == set(range(2 * padding + 1))
    assert torch.all((offsets.mean(dim=0) - padding).abs() < 4 * 0.082)


def test_erasing_hits_the_stated_fraction_with_rectangles_of_2_to_33_percent():
    """erase_prob 0.25 over 800 images: sd sqrt(0.25 · 0.75 / 800) = 0.0153. An erased
    image has one axis-aligned rectangle of ERASE_FILL covering 2-33 % of it (kornia's and
    timm's default area range; rounding to whole pixels widens it slightly)."""
    count = 800
    images = torch.ones(count, *SHAPE)
    out = _plan(AugmentConfig(erase_prob=0.25), count, seed=1).after_normalize(images, None)
    erased = out == ERASE_FILL                                        # (count, C, H, W)
    hit = erased.flatten(1).any(dim=1)
    assert abs(float(hit.float().mean()) - 0.25) < 4 * 0.0153
    for mask in erased[hit][:50, 0]:                                  # every channel alike
        rows, cols = mask.any(dim=1).nonzero(), mask.any(dim=0).nonzero()
        box = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert box.all()                                              # one full rectangle
        assert 0.01 <= float(box.numel()) / mask.numel() <= 0.40
    assert torch.equal(out[~hit], images[~hit])


def test_randaugment_magnitude_is_timms_scale_of_ten():
    """timm's m9 of 10 is kornia's 27 of 30: a rotation of 0.9 · 30° = 27°."""
    assert kornia_magnitude(9) == 27
    for seed in range(200):
        item = _plan(AugmentConfig(randaugment_ops=1), 6, seed).before_params[0][0].data[0]
        if item.name.startswith("Rotate"):
            assert torch.equal(item.data["degrees"].abs(), torch.full((6,), 27.0))
            return
    pytest.fail("no rotation drawn in 200 seeds")


def test_a_shard_of_the_batch_equals_those_rows_of_the_whole():
    """Every rank draws the parameters of the whole global batch and applies its rows'."""
    config = AugmentConfig(crop_padding=3, randaugment_ops=2, erase_prob=0.5)
    images = torch.rand(8, *SHAPE)
    rows = torch.tensor([1, 4, 5, 7])
    for seed in range(12):
        plan = _plan(config, 8, seed)
        whole = plan.after_normalize(plan.before_normalize(images, None), None)
        part = plan.after_normalize(plan.before_normalize(images[rows], rows), rows)
        assert torch.equal(whole[rows], part), seed


def test_drawing_leaves_the_global_generator_alone():
    state = torch.get_rng_state()
    _plan(AugmentConfig(crop_padding=2, randaugment_ops=1, erase_prob=0.5), 4, seed=0)
    assert torch.equal(torch.get_rng_state(), state)


def test_bad_settings_are_input_errors():
    with pytest.raises(ValueError, match="augment.erase_prob"):
        AugmentConfig(erase_prob=1.5)
    with pytest.raises(ValueError, match="augment.randaugment_magnitude"):
        AugmentConfig(randaugment_ops=1, randaugment_magnitude=10)
    with pytest.raises(ValueError, match="event frames are not augmented"):
        BatchAugment(AugmentConfig(crop_padding=2), (4, 2, 16, 16))


# ---------------------------------------------------------------- the batch stream


def _dataset(count: int = 32) -> InMemoryDataset:
    generator = torch.Generator().manual_seed(0)
    samples = torch.randint(0, 256, (count, *SHAPE), dtype=torch.uint8, generator=generator)
    labels = torch.arange(count) % 4
    info = DatasetInfo(name="noise", split="train", num_classes=4, input_shape=SHAPE,
                       class_names=("a", "b", "c", "d"), source="noise")
    transform = BatchTransform(scale=1 / 255, mean=(0.5,) * 3, std=(0.25,) * 3,
                               random_hflip=True)
    return InMemoryDataset(samples, labels, info, transform)


_AUGMENT = AugmentConfig(crop_padding=2, randaugment_ops=1, erase_prob=0.5)


def _epoch(shard: Shard, epoch: int = 0, augment=_AUGMENT, mixup_alpha=0.4):
    dataset = _dataset()
    return list(EpochBatches(
        dataset, batch_size=8, seed=5, epoch=epoch, mixup_alpha=mixup_alpha,
        label_smoothing=0.1, shard=shard, device=torch.device("cpu"),
        augment=BatchAugment(augment, SHAPE) if augment.active else None))


def test_shards_of_every_step_put_together_are_the_single_process_batch():
    """Flips, crop, RandAugment, erasing and mixup partners (which may sit on the other
    rank) drawn for the global batch: the two ranks' shares are the one process's batch."""
    whole = _epoch(Shard(0, 1))
    halves = [_epoch(Shard(rank, 2)) for rank in (0, 1)]
    assert len(whole) == len(halves[0]) == 4
    for step, batch in enumerate(whole):
        for field in ("images", "targets", "labels"):
            joined = torch.cat([getattr(half[step], field) for half in halves])
            assert torch.equal(joined, getattr(batch, field)), (step, field)


def test_a_fixed_seed_gives_identical_batches_across_a_resume():
    """A resumed run rebuilds the epoch's stream from (seed, epoch) alone."""
    first = _epoch(Shard(0, 1), epoch=3)
    again = _epoch(Shard(0, 1), epoch=3)
    for a, b in zip(first, again):
        assert torch.equal(a.images, b.images) and torch.equal(a.targets, b.targets)
    other = _epoch(Shard(0, 1), epoch=4)
    assert not torch.equal(first[0].images, other[0].images)


def test_augmentation_off_leaves_the_stream_as_before():
    """No augmentation and no mixup: a step is the data set's own shuffled batch."""
    batches = _epoch(Shard(0, 1), augment=AugmentConfig(), mixup_alpha=None)
    dataset = _dataset()
    generator = torch.Generator().manual_seed(5 * 1_000_003 + 0)
    order = torch.randperm(len(dataset), generator=generator)
    images, labels = dataset.get_batch(order[:8], generator)
    assert torch.equal(batches[0].images, images) and torch.equal(batches[0].labels, labels)


def test_resumed_training_with_the_recipe_augmentation_is_bit_identical(tmp_path):
    from torch import nn

    from sparsespikformer.model.training.loop import TrainConfig, train

    def model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                             nn.Flatten(), nn.Linear(4 * 12 * 12, 4))

    config = TrainConfig(epochs=2, batch_size=8, lr=1e-2, warmup_epochs=0, seed=1,
                         mixup_alpha=0.4, augment=_AUGMENT)
    straight = model()
    train(straight, _dataset(), _dataset(16), config, tmp_path / "a", progress=False)
    steps = {"n": 0}

    def crash_in_epoch_two(_model) -> None:
        steps["n"] += 1
        if steps["n"] == 6:                           # 4 steps per epoch
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(model(), _dataset(), _dataset(16), config, tmp_path / "b", progress=False,
              after_optimizer_step=crash_in_epoch_two)
    resumed = model()
    train(resumed, _dataset(), _dataset(16), config, tmp_path / "b", progress=False)
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
