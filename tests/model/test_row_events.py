"""Per-sample row events (trace schema 3) against the raw tensors each layer really saw.

The oracle hooks the layers independently, keeps their raw inputs and builds the GEMM rows
itself: im2col with `F.unfold` for convolutions (the recorder uses a ones-kernel `conv2d`),
feature sums of the token matrix for linears, each head's rows for attention.
"""

import numpy as np
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

from sparsespikformer.model.nn.attention import SpikeMatmul
from sparsespikformer.model.tracing.record import record_trace
from sparsespikformer.model.tracing.recorder import recorded_modules


def oracle_rows(model, inputs):
    """{layer: (S, T, G, M)} from the raw inputs of every GEMM layer."""
    rows = {}

    def keep(name, value):
        rows.setdefault(name, []).append(value)

    def hook(name, module):
        def on_forward(mod, args, out):
            x = args[0].detach().double().abs()
            if isinstance(mod, SpikeMatmul):  # (T, B, heads, M, K)
                keep(name, x.sum(-1).permute(1, 0, 2, 3))
            elif name == "head":  # (B, C)
                keep(name, x.sum(-1)[:, None, None, None])
            elif name.startswith("token_selectors."):  # (B, N, C)
                keep(name, x.sum(-1)[:, None, None, :])
            elif isinstance(mod, nn.Linear):  # (T*B, N, C)
                per = x.sum(-1).reshape(TIMESTEPS, -1, x.shape[1])  # (T, B, N)
                keep(name, per.permute(1, 0, 2)[:, :, None])
            elif mod.kernel_size in ((1,), (1, 1)):  # per-token 1x1 conv, (T*B, C, N[, 1])
                per = x.flatten(2).sum(1).reshape(TIMESTEPS, -1, x.flatten(2).shape[-1])
                keep(name, per.permute(1, 0, 2)[:, :, None])
            else:  # im2col: (T*B, C*kh*kw, L) -> row sums (T*B, L)
                cols = F.unfold(x, mod.kernel_size, dilation=mod.dilation,
                                padding=mod.padding, stride=mod.stride)
                per = cols.sum(1).reshape(TIMESTEPS, -1, cols.shape[-1])
                keep(name, per.permute(1, 0, 2)[:, :, None])
        return on_forward

    handles = [module.register_forward_hook(hook(name, module))
               for name, module in recorded_modules(model)
               if isinstance(module, (SpikeMatmul, nn.Linear, nn.Conv1d, nn.Conv2d))]
    with torch.no_grad():
        model.eval()
        model(inputs)
    for handle in handles:
        handle.remove()
    return {name: torch.cat(parts).numpy() for name, parts in rows.items()}


@pytest.mark.parametrize("variant", ["dense", "selected"])
def test_row_events_equal_the_raw_gemm_rows(variant):
    model = small_model()
    if variant == "selected":
        prune_randomly(model)
        add_selectors(model)
    inputs = images(5)
    trace = record_trace(model, inputs, batch_size=2)
    expected = oracle_rows(model, inputs)
    gemm = trace.layers[trace.layers.gemm_m > 0]
    assert len(gemm) > 0
    for row in gemm.itertuples():
        got = trace.arrays[row.layer]["sample_row_events"]
        assert got.shape == (5, row.timesteps, row.gemm_groups, row.gemm_m), row.layer
        np.testing.assert_allclose(got, expected[row.layer], rtol=1e-5, err_msg=row.layer)


@pytest.mark.parametrize("form, options", [("imagenet", {}), ("dvs", {}),
                                           ("imagenet", {"attn_order": "kv_first"})])
def test_row_events_of_the_conv_forms(form, options):
    model = small_form_model(form, **options)
    inputs = images(3, frames=form == "dvs")
    trace = record_trace(model, inputs, batch_size=2)
    expected = oracle_rows(model, inputs)
    for row in trace.layers[trace.layers.gemm_m > 0].itertuples():
        got = trace.arrays[row.layer]["sample_row_events"]
        np.testing.assert_allclose(got, expected[row.layer], rtol=1e-5, err_msg=row.layer)
