"""`synthetic_trace` worked by hand: argument checks, the manifest, per-layer statistics, the
random arrays' documented means and spreads, how weight non-zeros are spread over output
channels, and token shrinking on blocks whose rows do not all see the block's token count.

Every expected value is worked in the test's docstring or comments from the documented rules
(rate x in_numel / tokens events per cell in sixteenths, 5 % sample jitter, Poisson row
events around rate x K, kept_token_count's table), never taken from the code under test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparsespikformer.simulator.errors import TraceError
from sparsespikformer.simulator.synthetic import SHAPE_COLUMNS, synthetic_trace


def shape_row(layer, kind, block, *, tokens, in_numel, out_numel, m=0, n=0, k=0, groups=1,
              weight_numel=0, value_kind="spike", **extra):
    """One layer-shape row; a row without a GEMM passes m = n = k = 0."""
    return {"layer": layer, "kind": kind, "block": block, "tokens_in": tokens,
            "tokens_out": tokens, "in_numel": in_numel, "out_numel": out_numel,
            "gemm_m": m, "gemm_n": n, "gemm_k": k, "gemm_groups": groups if m else 0,
            "weight_numel": weight_numel, "in_value_kind": value_kind, **extra}


def linear(layer, tokens, d_in, d_out, *, block=0, value_kind="spike", **extra):
    return shape_row(layer, "linear", block, tokens=tokens, in_numel=tokens * d_in,
                     out_numel=tokens * d_out, m=tokens, n=d_out, k=d_in,
                     weight_numel=d_in * d_out, value_kind=value_kind, **extra)


def lif(layer, tokens, numel, *, block=0):
    return shape_row(layer, "lif", block, tokens=tokens, in_numel=numel, out_numel=numel,
                     value_kind="real")


def by_layer(trace):
    return trace.layers.set_index("layer")


# --------------------------------------------------------------------- arguments, manifest

@pytest.mark.parametrize("argument, value, bound", [
    ("firing_rate", -0.1, "[0, 1]"), ("weight_density", 1.5, "[0, 1]"),
    ("keep_ratio", 0.0, "(0, 1]")])
def test_out_of_range_fraction_names_argument_and_bound(argument, value, bound):
    """A keep ratio of 0 would keep no token: unlike the two rates it must be > 0."""
    message = f"^synthetic_trace: {argument}: must be a number in {bound}, got {value!r}$"
    with pytest.raises(TraceError, match=message.replace("[", r"\[").replace("(", r"\(")):
        synthetic_trace([linear("fc", 4, 8, 8)], **{argument: value})


def test_zero_rates_are_valid_and_give_no_events():
    """firing_rate 0 and weight_density 0: Poisson(0) draws are 0, so every event array,
    every sample count and every weight count is exactly zero (no floor above zero)."""
    trace = synthetic_trace([linear("fc", 16, 8, 4)], firing_rate=0.0, weight_density=0.0,
                            timesteps=2, num_samples=3)
    arrays = trace.arrays["fc"]
    assert by_layer(trace).loc["fc", "weight_nnz"] == 0
    for name in ("events_per_step_token", "sample_effective_ops", "sample_in_events",
                 "sample_row_events", "nnz_per_out_channel"):
        assert arrays[name].size > 0 and not arrays[name].any(), name


def test_missing_shape_columns_are_all_named_in_order():
    row = linear("fc", 4, 8, 8)
    del row["gemm_groups"], row["weight_numel"]
    message = "^synthetic_trace: layer_shapes lacks columns: gemm_groups, weight_numel$"
    with pytest.raises(TraceError, match=message):
        synthetic_trace([row])


def test_dataframe_and_series_inputs_give_the_rows_given():
    """A DataFrame indexed by layer name (its index named like a column) and a Series of row
    dicts are both read as the rows they hold."""
    rows = [linear("a", 4, 8, 8), lif("b", 4, 32)]
    frame = pd.DataFrame(rows).set_index("layer", drop=False)
    for given in (frame, pd.Series(rows)):
        layers = synthetic_trace(given, timesteps=2).layers
        assert layers["layer"].tolist() == ["a", "b"]
        assert layers["gemm_m"].tolist() == [4, 0] and layers["in_numel"].tolist() == [32, 32]
        assert layers["dense_macs"].tolist() == [2 * 4 * 8 * 8, 0.0]  # T x m x n x k


def test_defaults_are_the_documented_ones():
    """Signature defaults: 4 timesteps, 8 samples, seed 0, no preset, ρ = 1."""
    trace = synthetic_trace([linear("fc", 4, 8, 8)])
    manifest = trace.manifest
    assert (manifest["timesteps"], manifest["num_samples"], manifest["seed"]) == (4, 8, 0)
    assert manifest["preset"] == ""
    assert trace.layers.loc[0, "timesteps"] == 4
    assert trace.arrays["fc"]["sample_effective_ops"].shape == (8,)
    assert trace.arrays["fc"]["events_per_step_token"].shape == (4, 4)


def test_manifest_records_the_study_parameters():
    """Blocks 0, 1, 2 at ρ = 0.5: selectors before blocks 1 and 2 keep ρ and ρ² = 0.25;
    weight density 0.25 is weight sparsity 0.75."""
    rows = [linear(f"block.{b}.fc", 16, 8, 8, block=b) for b in (0, 1, 2)]
    manifest = synthetic_trace(rows, keep_ratio=0.5, weight_density=0.25, seed=7,
                               preset="tiny", model_config={"depth": 3},
                               input_shape=(3, 32, 32)).manifest
    assert (manifest["source"], manifest["dataset"]) == ("synthetic", "synthetic")
    assert (manifest["preset"], manifest["model_config"]) == ("tiny", {"depth": 3})
    assert (manifest["seed"], manifest["input_shape"]) == (7, [3, 32, 32])
    assert manifest["weight_sparsity"] == 0.75
    assert manifest["keep_ratios"] == [0.5, 0.25]
    assert manifest["selector_scorer"] == "synthetic"


def test_keep_ratio_one_changes_no_shape_and_records_no_selection():
    """ρ = 1 selects nothing: an attention row keeps the in_numel it was given (here Q and K
    counted together, 2 x 16 x 8 = 256, not groups x m x k = 128), the manifest lists no keep
    ratio and no scorer."""
    attention = shape_row("block.1.qk", "attn_qk", 1, tokens=16, in_numel=256, out_numel=512,
                          m=16, n=16, k=4, groups=2)
    trace = synthetic_trace([linear("block.1.q", 16, 8, 8, block=1), attention],
                            keep_ratio=1.0)
    assert by_layer(trace).loc["block.1.qk", "in_numel"] == 256
    assert trace.manifest["keep_ratios"] == []
    assert trace.manifest["selector_scorer"] is None


# --------------------------------------------------------------------- per-layer statistics

def test_input_kind_flags_value_range_and_nonzero_pairs():
    """Spike input at rate 0.25 with half the weights: values in [0, 1], mean 0.25, and every
    surviving (input, weight) pair counted once: 0.25 x 0.5 x T m n k = 0.125 x 2 x 4 x 8 x 8.
    A real-valued input is dense: mean 1, not a spike input."""
    layers = by_layer(synthetic_trace(
        [linear("spiky", 4, 8, 8), linear("real", 4, 8, 8, value_kind="real")],
        firing_rate=0.25, weight_density=0.5, timesteps=2))
    spiky, real = layers.loc["spiky"], layers.loc["real"]
    assert bool(spiky.input_is_spike) and not bool(real.input_is_spike)
    assert (spiky.in_value_min, spiky.in_value_max, spiky.in_value_mean) == (0.0, 1.0, 0.25)
    assert (real.in_value_min, real.in_value_mean) == (0.0, 1.0)
    assert spiky.nonzero_pairs == spiky.effective_ops == 0.125 * 2 * 4 * 8 * 8
    assert real.nonzero_pairs == 0.5 * 2 * 4 * 8 * 8


def test_weightless_kind_has_no_weight_nonzeros_whatever_its_weight_count():
    """A pool row is not a weighted kind: even with a weight count it has no non-zeros and no
    per-channel array."""
    pool = shape_row("pool", "pool", -1, tokens=16, in_numel=64, out_numel=16, weight_numel=16)
    trace = synthetic_trace([pool], weight_density=1.0)
    assert by_layer(trace).loc["pool", "weight_nnz"] == 0
    assert "nnz_per_out_channel" not in trace.arrays["pool"]


def test_token_events_average_rate_times_channels_in_sixteenths():
    """Spike linear, 1024 tokens x 8 channels at rate 0.25: 0.25 x 8192 / 1024 = 2 events per
    (step, token), drawn as Poisson(32) / 16: multiples of 1/16, mean 2, the mean of 4096
    cells within 0.04 (7 standard errors of sqrt(32)/16/64)."""
    events = synthetic_trace([linear("fc", 1024, 8, 8)], firing_rate=0.25,
                             timesteps=4).arrays["fc"]["events_per_step_token"]
    assert events.shape == (4, 1024) and events.dtype == np.float64
    assert np.array_equal(events * 16, np.round(events * 16))
    assert abs(events.mean() - 2.0) < 0.04


def test_one_token_row_carries_all_its_input_events():
    """A real-valued one-token head over 400 features: 1 x 400 / 1 = 400 events a step,
    Poisson(6400) / 16 (sd 5); the mean of its 16 steps lies within 4 of 400."""
    head = shape_row("head", "head", -1, tokens=1, in_numel=400, out_numel=10, m=1, n=10,
                     k=400, weight_numel=4000, value_kind="real", timesteps=16)
    events = synthetic_trace([head]).arrays["head"]["events_per_step_token"]
    assert events.shape == (16, 1)
    assert abs(events.mean() - 400.0) < 4.0


def test_sample_spread_is_five_percent_and_shared_by_ops_and_events():
    """One jitter per sample, 1 + 0.05 z, scales both the sample's effective ops (mean
    0.25 x 2 x 64 x 8 x 8 x 1.0) and its input events (mean 0.25 x 512 x 2): a sample with
    more events does more ops. Over 4000 samples the ratio's mean is 1 within 0.005 (6 standard
    errors of 0.05/63) and its standard deviation 0.05 within 0.005."""
    trace = synthetic_trace([linear("fc", 64, 8, 8)], firing_rate=0.25, timesteps=2,
                            num_samples=4000)
    arrays = trace.arrays["fc"]
    ops = arrays["sample_effective_ops"] / (0.25 * 2 * 64 * 8 * 8)
    events = arrays["sample_in_events"] / (0.25 * 512 * 2)
    np.testing.assert_allclose(ops, events, rtol=1e-12)
    assert abs(events.mean() - 1.0) < 0.005
    assert abs(events.std() - 0.05) < 0.005


# --------------------------------------------------------------------- per-sample row events

def test_row_events_real_inputs_exact_spike_inputs_poisson():
    """Rate 0.5: a spike row of K = 64 draws Poisson(32) events per row (integers, mean 32
    within 1.5 over 3 x 2 x 16 rows); a real-valued row of K = 27 is dense, exactly 27 per
    row. Both float32, (samples, T, groups, m)."""
    conv = shape_row("conv", "conv", -1, tokens=16, in_numel=48, out_numel=128, m=16, n=8,
                     k=27, weight_numel=216, value_kind="real")
    trace = synthetic_trace([conv, linear("fc", 16, 64, 8)], firing_rate=0.5, timesteps=2,
                            num_samples=3)
    real, spiky = (trace.arrays[name]["sample_row_events"] for name in ("conv", "fc"))
    assert real.shape == spiky.shape == (3, 2, 1, 16)
    assert real.dtype == spiky.dtype == np.float32
    assert (real == 27.0).all()
    assert np.array_equal(spiky, np.round(spiky)) and np.ptp(spiky) > 0
    assert abs(spiky.mean() - 32.0) < 1.5


@pytest.mark.parametrize("num_samples, kept", [(3, 3), (10, 8)])
def test_row_events_for_every_gemm_row_at_most_eight_samples(num_samples, kept):
    """A one-row GEMM (a head, T = 1) has row events; a LIF (no GEMM) has none; samples are
    capped at 8, as a recorder keeps them."""
    head = shape_row("head", "head", -1, tokens=1, in_numel=32, out_numel=10, m=1, n=10, k=32,
                     weight_numel=320, value_kind="rate", timesteps=1)
    trace = synthetic_trace([head, lif("lif", 4, 32)], num_samples=num_samples)
    assert trace.arrays["head"]["sample_row_events"].shape == (kept, 1, 1, 1)
    assert "sample_row_events" not in trace.arrays["lif"]


# --------------------------------------------------------------------- weight non-zeros

def channel_nonzeros(row, density):
    trace = synthetic_trace([row], weight_density=density)
    return by_layer(trace).loc[row["layer"], "weight_nnz"], trace.arrays[row["layer"]][
        "nnz_per_out_channel"]


@pytest.mark.parametrize("channels, fan_in, density, nnz, base, extra", [
    (4, 10, 0.225, 9, 2, 1),         # 0.225 x 40 = 9 = 4 x 2 + 1
    (64, 4, 0.49609375, 127, 1, 63),  # 127/256 x 256 = 127 = 64 x 1 + 63
    (4, 1, 0.25, 1, 0, 1),           # a single non-zero
    (1, 12, 1.0, 12, 12, 0),         # one channel holds them all
])
def test_nonzeros_spread_evenly_over_output_channels(channels, fan_in, density, nnz, base,
                                                     extra):
    """nnz = round(fan_in x channels x density); every channel gets nnz // channels and
    `extra` = nnz % channels channels one more: the counts sum to nnz."""
    weight_nnz, counts = channel_nonzeros(linear("fc", 4, fan_in, channels), density)
    assert weight_nnz == nnz and counts.dtype == np.int64
    assert counts.shape == (channels,) and counts.sum() == nnz
    assert sorted(counts.tolist()) == [base] * (channels - extra) + [base + 1] * extra


def test_nonzeros_never_exceed_a_channels_fan_in():
    """10 weights over 4 output channels: a fan-in of 10 // 4 = 2, so at most 2 per channel,
    [2, 2, 2, 2], though 10 are kept."""
    row = shape_row("odd", "linear", 0, tokens=4, in_numel=12, out_numel=16, m=4, n=4, k=3,
                    weight_numel=10)
    _, counts = channel_nonzeros(row, 1.0)
    assert counts.tolist() == [2, 2, 2, 2]


def test_weighted_row_without_output_channels_has_an_empty_channel_array():
    row = shape_row("empty", "linear", 0, tokens=4, in_numel=32, out_numel=0, m=4, n=0, k=8,
                    weight_numel=8)
    weight_nnz, counts = channel_nonzeros(row, 1.0)
    assert weight_nnz == 8 and counts.shape == (0,)


# --------------------------------------------------------------------- keep ratio

def test_kv_first_attention_shrinks_only_its_token_axes():
    """Block 1 of N = 4 tokens, D = 16, 2 heads of 8, Kᵀ·V first, ρ = 0.5: 2 tokens kept.
    Kᵀ·V (m = n = head dim 8, k = N): only k shrinks, 4 -> 2; its 8 rows are not tokens.
      Kᵀ·V  in 2 x 8 x 2 = 32, out 2 x 8 x 8 = 128, GEMM 8 x 8 x 2;
      Q·(KᵀV) in 2 x 2 x 8 = 32, out 2 x 2 x 8 = 32, GEMM 2 x 8 x 8;
      Q projection 2 x 16 = 32 in and out, GEMM 2 x 16 x 16."""
    rows = [linear("q", 4, 16, 16, block=1),
            shape_row("kv", "attn_qk", 1, tokens=8, in_numel=64, out_numel=128, m=8, n=8, k=4,
                      groups=2),
            shape_row("qkv", "attn_v", 1, tokens=4, in_numel=64, out_numel=64, m=4, n=8, k=8,
                      groups=2)]
    layers = by_layer(synthetic_trace(rows, keep_ratio=0.5))
    columns = ["tokens_in", "in_numel", "out_numel", "gemm_m", "gemm_n", "gemm_k"]
    assert tuple(layers.loc["kv", columns]) == (8, 32, 128, 8, 8, 2)
    assert tuple(layers.loc["qkv", columns]) == (2, 32, 32, 2, 8, 8)
    assert tuple(layers.loc["q", columns]) == (2, 32, 32, 2, 16, 16)


def test_attention_follows_the_block_not_its_selector():
    """A model that already selects: block 1's selector sees 8 tokens, its other rows 4.
    ρ = 0.5 keeps int(4 x 0.5) = 2 of the block's 4, so Q·Kᵀ (2 heads of 8) becomes
    2 x 2 x 8: in 2 x 2 x 8 = 32, out 2 x 2 x 2 = 8."""
    rows = [linear("sel", 8, 16, 8, block=1, value_kind="rate", timesteps=1),
            linear("q", 4, 16, 16, block=1),
            shape_row("qk", "attn_qk", 1, tokens=4, in_numel=64, out_numel=32, m=4, n=4, k=8,
                      groups=2)]
    rows[0]["kind"] = "selector"
    layers = by_layer(synthetic_trace(rows, keep_ratio=0.5))
    columns = ["tokens_in", "in_numel", "out_numel", "gemm_m", "gemm_n", "gemm_k"]
    assert tuple(layers.loc["qk", columns]) == (2, 32, 8, 2, 2, 8)
    assert tuple(layers.loc["q", columns]) == (2, 32, 32, 2, 16, 16)


def test_shrunk_counts_stay_integers_and_one_token_rows_keep_their_size():
    """ρ = 0.7 on block 1: 16 tokens -> int(11.2) = 11, in_numel 11 x 8 = 88; a one-token row
    keeps its one token (never fewer than one) and so its 8 inputs. Counts are int columns."""
    rows = [linear("fc", 16, 8, 8, block=1), linear("pooled", 1, 8, 8, block=1)]
    layers = by_layer(synthetic_trace(rows, keep_ratio=0.7))
    assert tuple(layers.loc["fc", ["tokens_in", "gemm_m", "in_numel"]]) == (11, 11, 88)
    assert tuple(layers.loc["pooled", ["tokens_in", "gemm_m", "in_numel"]]) == (1, 1, 8)
    for column in SHAPE_COLUMNS[2:]:
        assert layers[column].dtype.kind == "i", column


def test_one_token_row_keeps_one_token_just_below_ratio_one():
    """ρ = 1 - 1e-10: int(1 x ρ) = 0, and a row never keeps fewer than one token: 1."""
    layers = by_layer(synthetic_trace([linear("pooled", 1, 8, 8, block=1)],
                                      keep_ratio=1 - 1e-10))
    assert tuple(layers.loc["pooled", ["tokens_in", "gemm_m", "in_numel"]]) == (1, 1, 8)


@pytest.mark.filterwarnings("error")
def test_rows_without_a_known_token_count_are_left_as_given():
    """Block 1 lists only its Q·Kᵀ (no token-wise row gives the block's count), and a
    patch-embedding row and a block-1 row give no token count (0): at ρ = 0.5 none changes
    (the block-1 row was once scaled by 0 / 1 to nothing), and no numeric warning is raised
    on the way."""
    qk = shape_row("qk", "attn_qk", 1, tokens=4, in_numel=64, out_numel=32, m=4, n=4, k=8,
                   groups=2)
    stem = shape_row("stem", "lif", -1, tokens=0, in_numel=64, out_numel=64, value_kind="real")
    late = shape_row("late", "lif", 1, tokens=0, in_numel=128, out_numel=128,
                     value_kind="real")
    layers = by_layer(synthetic_trace([qk, stem, late], keep_ratio=0.5))
    columns = ["tokens_in", "in_numel", "out_numel", "gemm_m", "gemm_n", "gemm_k"]
    assert tuple(layers.loc["qk", columns]) == (4, 64, 32, 4, 4, 8)
    assert tuple(layers.loc["stem", columns]) == (0, 64, 64, 0, 0, 0)
    assert tuple(layers.loc["late", columns]) == (0, 128, 128, 0, 0, 0)
