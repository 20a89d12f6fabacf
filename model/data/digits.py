"""The embedded default data set: scikit-learn's bundled 8x8 handwritten digits.

The 1,797 images ship inside scikit-learn, so nothing is downloaded. Pixels
(0..16) are scaled to [0, 1] and each pixel is repeated into a 2x2 block
(nearest-neighbour upscaling) to give 16x16 images. Why 16x16: the digits
preset's SPS halves the resolution once, so its 8x8 = 64 tokens line up
one-to-one with the 64 original pixels; every token is a meaningful patch of
the digit, and the SPS convolutions still see a 3x3 neighbourhood of original
pixels before pooling. Nearest (not bilinear) keeps the upscaled image an
exact copy of the data, with no invented intermediate values.

The train/test split is stratified by class and fixed by `split_seed`, so every
run, on every machine, trains and tests on the same images.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sparsespikformer.model.data.base import DatasetInfo, InMemoryDataset
from sparsespikformer.simulator.errors import DataError

DIGITS_NATIVE_SIZE = 8
DIGITS_MAX_VALUE = 16.0
DEFAULT_IMG_SIZE = 16
DEFAULT_TEST_FRACTION = 0.2
DEFAULT_SPLIT_SEED = 0


def digits_split_indices(labels: np.ndarray, test_fraction: float, split_seed: int
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded split of sample indices into (train, test)."""
    indices = np.arange(labels.shape[0])
    train_idx, test_idx = train_test_split(indices, test_size=test_fraction,
                                           random_state=split_seed, stratify=labels)
    return np.sort(train_idx), np.sort(test_idx)


def upscale_nearest(images: np.ndarray, img_size: int) -> np.ndarray:
    """(N, 8, 8) -> (N, img_size, img_size), each pixel repeated into a square block."""
    if img_size % DIGITS_NATIVE_SIZE != 0 or img_size <= 0:
        raise DataError(f"digits: img_size must be a positive multiple of "
                         f"{DIGITS_NATIVE_SIZE}, got {img_size}")
    factor = img_size // DIGITS_NATIVE_SIZE
    return images.repeat(factor, axis=1).repeat(factor, axis=2)


def load_digits_split(split: str, img_size: int | None = None,
                      test_fraction: float = DEFAULT_TEST_FRACTION,
                      split_seed: int = DEFAULT_SPLIT_SEED) -> InMemoryDataset:
    """One split of the digits as float images (N, 1, img_size, img_size) in [0, 1]."""
    img_size = DEFAULT_IMG_SIZE if img_size is None else img_size
    bunch = load_digits()
    images = bunch.images.astype(np.float32) / DIGITS_MAX_VALUE       # (1797, 8, 8)
    labels = bunch.target.astype(np.int64)                            # (1797,)
    train_idx, test_idx = digits_split_indices(labels, test_fraction, split_seed)
    chosen = train_idx if split == "train" else test_idx
    upscaled = upscale_nearest(images[chosen], img_size)[:, None]      # (N, 1, S, S)
    info = DatasetInfo(
        name="digits", split=split, num_classes=10,
        input_shape=(1, img_size, img_size),
        class_names=tuple(str(d) for d in range(10)),
        source="sklearn.datasets.load_digits",
    )
    return InMemoryDataset(torch.from_numpy(np.ascontiguousarray(upscaled)),
                           torch.from_numpy(labels[chosen]), info)
