"""Load-imbalance factors worked on paper (simulator/imbalance.py): per-sample fold maxima,
time stacking, empty samples, and receptive-field sums of a conv's input events."""

from __future__ import annotations

import numpy as np
import pytest

from sparsespikformer.simulator.imbalance import receptive_field_events, sample_fold_factors

# (S, T, G, M): sample A has all its events on its first row, sample B is flat
HOT_AND_FLAT = np.array([[[[4.0, 0.0, 0.0, 0.0]]], [[[1.0, 1.0, 1.0, 1.0]]]])


@pytest.mark.parametrize("scale", [1.0, 0.1])
def test_per_sample_fold_maxima_over_their_own_means(scale):
    """Folds of 2 rows. A: folds [4, 0] and [0, 0], maxima 4 and 0, mean 2 over its mean
    element 1: 2. B: maxima 1 and 1: 1. Layer: mean maxima (2 + 1) / 2 = 1.5 over the mean
    element 1: 1.5. Scaling every event (0.1: means below one) changes no ratio."""
    factor, per_sample = sample_fold_factors(HOT_AND_FLAT * scale, 2, stack_time=False)
    assert factor == pytest.approx(1.5)
    assert per_sample.tolist() == pytest.approx([2.0, 1.0])


def test_a_sample_without_events_counts_as_balanced_but_weighs_in_the_mean():
    """A and an all-zero sample: A's factor 2, the empty one 1; layer: maxima (2 + 0) / 2 = 1
    over the mean element (1 + 0) / 2 = 0.5: 2."""
    events = np.stack([HOT_AND_FLAT[0], np.zeros_like(HOT_AND_FLAT[0])])
    factor, per_sample = sample_fold_factors(events, 2, stack_time=False)
    assert factor == pytest.approx(2.0)
    assert per_sample.tolist() == pytest.approx([2.0, 1.0])


def test_no_events_at_all_is_no_imbalance():
    factor, per_sample = sample_fold_factors(np.zeros((3, 2, 1, 4)), 2, stack_time=False)
    assert factor == 1.0 and per_sample.tolist() == [1.0, 1.0, 1.0]


def test_time_parallel_stacks_timesteps_into_one_fold():
    """One sample, T = 2, 2 rows: [3, 0] then [0, 1], folds of 4 rows. Serial: each
    timestep is its own fold, maxima 3 and 1, mean 2 over the mean element 1: 2. Stacked
    (time-parallel) the 4 rows [3, 0, 0, 1] are one fold: maximum 3: 3."""
    events = np.array([[[[3.0, 0.0]], [[0.0, 1.0]]]])
    assert sample_fold_factors(events, 4, stack_time=False)[0] == pytest.approx(2.0)
    assert sample_fold_factors(events, 4, stack_time=True)[0] == pytest.approx(3.0)


def one_hot_map(height=4, width=4):
    events = np.zeros((1, height * width))
    events[0, 0] = 1.0  # the top-left pixel
    return events


@pytest.mark.parametrize("kernel, out_side, expected_ones", [
    # 3x3 'same', stride 1: outputs (0..1, 0..1) see the top-left pixel
    (3, 4, [0, 1, 4, 5]),
    # stride 2 (4 -> 2): only output (0, 0) covers it
    (3, 2, [0]),
    # 5x5 'same' (padding 2): outputs (0..2, 0..2)
    (5, 4, [0, 1, 2, 4, 5, 6, 8, 9, 10]),
])
def test_receptive_field_sums_of_a_hot_pixel(kernel, out_side, expected_ones):
    sums = receptive_field_events(one_hot_map(), "1x2x4x4", f"1x8x{out_side}x{out_side}",
                                  2 * kernel * kernel)
    assert sums.shape == (1, out_side * out_side)
    assert np.flatnonzero(sums[0]).tolist() == expected_ones
    assert set(sums[0][expected_ones]) == {1.0}


@pytest.mark.parametrize("in_shape, out_shape, k, events", [
    ("1x2x4x4", "1x8x4x4", 2 * 4, one_hot_map()),        # an even (2x2) kernel
    ("1x2x4x4", "1x8x4x4", 2 * 6, one_hot_map()),        # taps not a square
    ("1x2x4x4", "1x8x4x4", 0, one_hot_map()),            # no taps
    ("1x2x4x4", "1x8x4x4", 2 * 9, one_hot_map(4, 3)),    # events of another map
    ("1x2x4x4", "1x8x0x4", 2 * 9, one_hot_map()),        # no output rows
    ("1x2x4x4", "1x8x4x0", 2 * 9, one_hot_map()),        # no output columns
    ("1x2x4x4", "1x8x3x4", 2 * 9, one_hot_map()),        # stride not whole (rows)
    ("1x2x4x4", "1x8x4x3", 2 * 9, one_hot_map()),        # stride not whole (columns)
    ("2x4x4", "1x8x4x4", 2 * 9, one_hot_map()),          # not a (T, C, H, W) shape
])
def test_shapes_that_are_not_a_same_padded_odd_square_conv_keep_the_input_events(
        in_shape, out_shape, k, events):
    assert receptive_field_events(events, in_shape, out_shape, k) is None
