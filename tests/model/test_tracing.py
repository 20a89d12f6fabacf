"""record_trace against a brute-force recount from the raw tensors the layers really saw.

The oracle hooks the same modules independently, keeps their raw inputs, and recounts by
running each layer again with 0/1 weight masks (F.linear / F.conv2d / matmul). The recorder
uses the closed-form kernels of trace_counts instead, so agreement checks both.
"""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from active_model import (
    TIMESTEPS,
    add_selectors,
    images,
    prune_randomly,
    small_form_model,
    small_model,
)
from torch import nn

from sparsespikformer.model import gflops
from sparsespikformer.model.nn.attention import SpikeMatmul
from sparsespikformer.model.nn.lif import LIF
from sparsespikformer.model.tracing.record import layer_shapes, record_trace
from sparsespikformer.model.tracing.recorder import recorded_modules
from sparsespikformer.simulator.synthetic import synthetic_trace
from sparsespikformer.simulator.trace import Trace


def brute_force_counts(model, inputs):
    """{layer: (dense_macs, sops, effective_ops, nonzero_pairs)} per sample, by masked re-runs."""
    samples = inputs.shape[0]
    totals = {}

    def add(name, values):
        totals[name] = tuple(np.add(totals.get(name, (0.0,) * 4), values))

    def hook_linear(name, module):
        def hook(mod, args, out):
            weight = mod.weight.detach().double().flatten(1)
            masks = {"ones": torch.ones_like(weight), "nonzero": (weight != 0).double()}
            x = args[0]
            if isinstance(mod, (nn.Conv1d, nn.Conv2d)) and mod.kernel_size in ((1,), (1, 1)):
                x = x.flatten(2).transpose(1, 2)  # channels-first 1x1 conv == per-token linear
            dense = out.numel() * weight.shape[1]  # every output sums C_in products
            add(name, [dense] + [float(F.linear(inp, masks[m]).sum())
                                 for inp, m in zip(*_three(x.double().abs()))])
        return hook

    def hook_conv(name, module):
        def hook(mod, args, out):
            weight = mod.weight.detach().double()
            masks = {"ones": torch.ones_like(weight), "nonzero": (weight != 0).double()}
            conv = dict(stride=mod.stride, padding=mod.padding, dilation=mod.dilation)
            dense = out.numel() * weight[0].numel()  # C_in·kh·kw products per output
            add(name, [dense] + [float(F.conv2d(inp, masks[m], **conv).sum())
                                 for inp, m in zip(*_three(args[0].double().abs()))])
        return hook

    def hook_matmul(name, module):
        def hook(mod, args, out):
            a, b = args[0].double().abs(), args[1].double()  # counts use |input|
            masks = {"ones": torch.ones_like(b), "nonzero": (b != 0).double()}
            dense = out.numel() * a.shape[-1]
            add(name, [dense] + [float((inp @ masks[m]).sum()) for inp, m in zip(*_three(a))])
        return hook

    handles = []
    for name, module in model.named_modules():
        if isinstance(module, SpikeMatmul):
            handles.append(module.register_forward_hook(hook_matmul(name, module)))
        elif isinstance(module, nn.Conv2d) and module.kernel_size != (1, 1):
            handles.append(module.register_forward_hook(hook_conv(name, module)))
        elif isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            handles.append(module.register_forward_hook(hook_linear(name, module)))
    with torch.no_grad():
        model(inputs)
    for handle in handles:
        handle.remove()
    return {name: tuple(v / samples for v in values) for name, values in totals.items()}


def _three(x):
    """Inputs and masks for (sops, effective_ops, nonzero_pairs)."""
    return [x, x, (x != 0).double()], ["ones", "nonzero", "nonzero"]


def _assert_counts_match_oracle(model, inputs, **record_options):
    trace = record_trace(model, inputs, **record_options)
    oracle = brute_force_counts(model, inputs)
    layers = trace.layers.set_index("layer")
    assert set(oracle) == set(layers.index[layers.dense_macs > 0])
    for name, (dense, sops, effective, pairs) in oracle.items():
        row = layers.loc[name]
        assert row.dense_macs == pytest.approx(dense, rel=1e-12), name
        assert row.sops == pytest.approx(sops, rel=1e-9), name
        assert row.effective_ops == pytest.approx(effective, rel=1e-9), name
        assert row.nonzero_pairs == pytest.approx(pairs, rel=1e-9), name
    # the network must actually spike for this comparison to mean anything
    lif = layers[layers.kind == "lif"]
    assert (lif.out_nonzero_fraction > 0.01).all() and (lif.out_nonzero_fraction < 0.99).all()
    return layers


@pytest.mark.parametrize("variant", ["dense", "pruned", "selected", "pruned_selected"])
def test_counts_equal_brute_force_recount(variant):
    model = small_model()
    if "pruned" in variant:
        prune_randomly(model)
    if "selected" in variant:
        add_selectors(model)
    layers = _assert_counts_match_oracle(model, images())
    if "pruned" in variant:
        linear = layers[layers.kind == "linear"]
        assert (linear.effective_ops < linear.sops).all()


@pytest.mark.parametrize("form, options", [("imagenet", {}), ("dvs", {}),
                                           ("imagenet", {"attn_order": "kv_first"})])
def test_conv_forms_and_kv_first_counts_equal_brute_force(form, options):
    """Tokens-last layouts (1x1 convs, (T, B, C, N) LIF inputs) and Q·(Kᵀ·V)."""
    model = small_form_model(form, **options)
    _assert_counts_match_oracle(model, images(frames=form == "dvs"), batch_size=4)


@pytest.mark.parametrize("scorer", ["firing_rate", "random"])
def test_parameterless_selectors_count_exactly(scorer):
    _assert_counts_match_oracle(add_selectors(small_model(), scorer=scorer), images())


def test_counts_do_not_depend_on_batching_or_described_samples():
    model, inputs = small_model(), images()
    whole = record_trace(model, inputs, batch_size=6, real_stats_samples=None)
    split = record_trace(model, inputs, batch_size=2, real_stats_samples=2)
    assert whole.manifest["real_stats_samples"] == 6
    assert split.manifest["real_stats_samples"] == 2
    exact = ["sops", "effective_ops", "nonzero_pairs", "dense_macs", "in_nonzero_fraction",
             "in_value_min", "in_value_max"]
    a, b = whole.layers.set_index("layer"), split.layers.set_index("layer")
    counted = a.kind != "lif"  # LIF inputs are membrane currents: described on 2 samples
    pd.testing.assert_frame_equal(a.loc[counted, exact], b.loc[counted, exact])
    lif = a.kind == "lif"
    pd.testing.assert_series_equal(a.loc[lif, "out_nonzero_fraction"],
                                   b.loc[lif, "out_nonzero_fraction"])
    for name in whole.arrays:
        for key, values in whole.arrays[name].items():
            np.testing.assert_array_equal(values, split.arrays[name][key], err_msg=name)


def test_described_statistics_are_those_of_the_first_batches():
    model, inputs = small_model(), images()
    first_two = record_trace(model, inputs[:2], batch_size=2, real_stats_samples=None)
    limited = record_trace(model, inputs, batch_size=2, real_stats_samples=1)
    a, b = first_two.layers.set_index("layer"), limited.layers.set_index("layer")
    lif = a.kind == "lif"
    for column in ("in_value_min", "in_value_max", "in_value_mean", "in_nonzero_fraction"):
        pd.testing.assert_series_equal(a.loc[lif, column], b.loc[lif, column])
    linear = a.kind == "linear"
    pd.testing.assert_series_equal(a.loc[linear, "out_nonzero_fraction"],
                                   b.loc[linear, "out_nonzero_fraction"])


def test_record_trace_rejects_bad_options():
    with pytest.raises(ValueError, match="real_stats_samples"):
        record_trace(small_model(), images(count=2), real_stats_samples=0)
    with pytest.raises(ValueError, match="batch_size"):
        record_trace(small_model(), images(count=2), batch_size=0)


def test_firing_rates_equal_raw_spike_means():
    model = small_model()
    inputs = images()
    seen = {}
    handles = [m.register_forward_hook(
        lambda mod, args, out, name=name: seen.setdefault(name, []).append(out.clone()))
        for name, m in model.named_modules() if isinstance(m, LIF)]
    trace = record_trace(model, inputs, batch_size=4)  # two batches: accumulation across them
    for handle in handles:
        handle.remove()
    layers = trace.layers.set_index("layer")
    for name, outputs in seen.items():
        spikes = torch.cat([o.flatten(1) for o in outputs], dim=1)
        assert layers.loc[name, "out_nonzero_fraction"] == pytest.approx(float(spikes.mean()))
        events = trace.arrays[name]["sample_in_events"]
        assert events.sum() == pytest.approx(float(spikes.sum()))


def test_input_value_statistics_equal_the_raw_inputs():
    """Range, mean and non-zero fraction of what every recorded layer read, signed images
    included (the mean is of the values, not of their magnitudes)."""
    model = add_selectors(small_model(), scorer="firing_rate")
    inputs = images() * 2 - 1
    seen = {}
    handles = [module.register_forward_hook(
        lambda mod, args, out, name=name: seen.setdefault(name, []).append(args[0].clone()))
        for name, module in recorded_modules(model)]
    trace = record_trace(model, inputs, batch_size=4)  # two batches: accumulation across them
    for handle in handles:
        handle.remove()
    layers = trace.layers.set_index("layer")
    assert layers.loc["patch_embed.proj_conv", "in_value_min"] < 0
    for name, batches in seen.items():
        values = torch.cat([b.flatten().double() for b in batches])
        row = layers.loc[name]
        assert row.in_value_min == values.min().item(), name
        assert row.in_value_max == values.max().item(), name
        assert row.in_value_mean == pytest.approx(values.mean().item(), rel=1e-6, abs=1e-9), name
        assert row.in_nonzero_fraction == pytest.approx((values != 0).double().mean().item()), name


def test_dense_macs_sum_to_gflops():
    for model in (small_model(), add_selectors(small_model())):
        trace = record_trace(model, images(count=2))
        assert trace.layers.dense_macs.sum() / 1e9 == pytest.approx(gflops(model, (1, 16, 16)))


def test_selected_model_has_fewer_tokens_after_the_selector():
    trace = record_trace(add_selectors(small_model(), keep_ratio=0.5), images(count=2))
    layers = trace.layers.set_index("layer")
    assert layers.loc["block.0.attn.q_linear", "tokens_in"] == 64
    assert layers.loc["block.1.attn.q_linear", "tokens_in"] == 32
    assert layers.loc["block.1.attn.qk_matmul", "gemm_n"] == 32
    assert (layers.kind == "selector").sum() == 2  # the learned scorer's two linears
    assert trace.manifest["keep_ratios"] == [0.5]
    assert trace.manifest["selector_scorer"] == "learned"


def test_value_kinds_follow_the_residual_stream():
    layers = record_trace(small_model(), images(count=2)).layers.set_index("layer")
    assert layers.loc["patch_embed.proj_conv", "in_value_kind"] == "real"
    assert layers.loc["patch_embed.proj_conv1", "in_value_kind"] == "spike"
    assert layers.loc["block.0.attn.q_linear", "in_value_kind"] == "integer"  # SPS + RPE sum
    assert layers.loc["block.0.attn.qk_matmul", "in_value_kind"] == "spike"
    assert layers.loc["block.0.attn.av_matmul", "in_value_kind"] == "integer"
    assert layers.loc["head", "in_value_kind"] == "rate"


def test_manifest_records_sparsity_accuracy_and_neurobench():
    model = prune_randomly(small_model(), density=0.25)
    inputs = images(count=8)
    labels = model(inputs).argmax(dim=1)
    labels[:2] = (labels[:2] + 1) % 10  # exactly 2 of 8 wrong
    trace = record_trace(model, inputs, labels, preset="tiny", dataset="digits", seed=5)
    manifest = trace.manifest
    assert manifest["accuracy"] == pytest.approx(6 / 8)
    prunable = [p for p in model.parameters() if p.dim() > 1]
    zeros = sum(int((p == 0).sum()) for p in prunable) / sum(p.numel() for p in prunable)
    assert manifest["weight_sparsity"] == pytest.approx(zeros)
    bench = manifest["neurobench"]   # each field checked in test_neurobench_metrics.py
    layers = trace.layers
    synaptic = layers[layers.kind.isin(["conv", "linear", "head"])]
    # NeuroBench's Dense leaves out the 3x3 convs' padding taps that dense_macs counts
    assert bench["synaptic_operations"]["Dense"] < synaptic.dense_macs.sum()
    n_params = sum(p.numel() for p in model.parameters()) + sum(
        b.numel() for b in model.buffers() if b.dtype.is_floating_point)
    assert bench["footprint"] >= 4 * n_params


def test_same_seed_same_trace_files(tmp_path):
    first = record_trace(small_model(seed=4), images(), seed=4).save(tmp_path / "a")
    second = record_trace(small_model(seed=4), images(), seed=4).save(tmp_path / "b")
    for name in ("manifest.json", "layers.csv", "arrays.npz"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_saved_trace_loads_back(tmp_path):
    trace = record_trace(small_model(), images(count=2))
    loaded = Trace.load(trace.save(tmp_path / "t"))
    assert list(loaded.layers.layer) == list(trace.layers.layer)


def test_recording_does_not_change_the_outputs():
    model = small_model()
    inputs = images()
    with torch.no_grad():
        before = model(inputs)
    record_trace(model, inputs)
    with torch.no_grad():
        after = model(inputs)
    assert torch.equal(before, after)


def test_layer_shapes_match_recorded_shapes():
    model = add_selectors(small_model())
    shapes = layer_shapes(model, (1, 16, 16))
    recorded = record_trace(model, images(count=2)).layers
    for column in ("layer", "kind", "gemm_m", "gemm_n", "gemm_k", "tokens_in", "weight_numel"):
        assert list(shapes[column]) == list(recorded[column]), column
    synthetic = synthetic_trace(shapes, timesteps=TIMESTEPS)
    assert synthetic.layers.dense_macs.sum() == recorded.dense_macs.sum()


@pytest.mark.parametrize("attn_order", ["qk_first", "kv_first"])
def test_synthetic_keep_ratio_gives_a_selected_models_shapes(attn_order):
    """Shrinking a plain model's shapes by ρ = the shapes a model with a selector records
    (attention's token x token sizes shrink by ρ², not ρ)."""
    plain_shapes = layer_shapes(small_form_model("cifar", attn_order=attn_order), (1, 16, 16))
    synthetic = synthetic_trace(plain_shapes, keep_ratio=0.5, timesteps=TIMESTEPS)
    selected = record_trace(add_selectors(small_form_model("cifar", attn_order=attn_order),
                                          keep_ratio=0.5),
                            images(count=2))
    columns = ["kind", "tokens_in", "tokens_out", "in_numel", "out_numel", "gemm_m", "gemm_n",
               "gemm_k", "gemm_groups", "dense_macs"]
    expected = selected.layers.set_index("layer")
    got = synthetic.layers.set_index("layer")
    block_1 = got.index[got.block == 1]
    assert len(block_1) > 10 and (got.loc[block_1, "kind"] == "attn_qk").any()
    pd.testing.assert_frame_equal(got.loc[block_1, columns], expected.loc[block_1, columns])


def test_synthetic_keep_ratio_keeps_a_selector_models_rows_consistent():
    """A model that already selects: its selector rows see more tokens than their block's
    other rows; every linear's numel must still follow its own token count."""
    shapes = layer_shapes(add_selectors(small_model(), keep_ratio=0.5), (1, 16, 16))
    layers = synthetic_trace(shapes, keep_ratio=0.5, timesteps=TIMESTEPS).layers
    linear = layers[layers.kind.isin(["linear", "selector"]) & (layers.block >= 1)]
    assert len(linear) > 4
    assert (linear.in_numel == linear.tokens_in * linear.gemm_k).all()
    assert (linear.gemm_m == linear.tokens_in).all()


def test_recording_under_inference_mode_gives_the_same_trace():
    """Inference tensors have no version counter: the statistics cache must cope."""
    model, inputs = small_model(), images()
    expected = record_trace(model, inputs, batch_size=3)
    with torch.inference_mode():
        traced = record_trace(model, inputs, batch_size=3)
    pd.testing.assert_frame_equal(traced.layers, expected.layers)
