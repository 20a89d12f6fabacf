"""Hand-built Spikformer layer shapes for simulator tests (no torch: the simulator's tests
must run where only numpy and pandas are installed).

Mirrors the structure `sparsespikformer.model.tracing.record.layer_shapes` records: SPS convs with
LIF and max-pool rows, Q/K/V projections on the integer residual stream, the two attention
matmuls, projection, MLP, head; optionally a learned token selector (two linears) before
every block but the first.
"""

from __future__ import annotations


def _row(layer, kind, block, *, tokens_in, tokens_out, in_numel, out_numel, m=0, n=0, k=0,
         groups=0, weight_numel=0, value_kind="spike", timesteps=None):
    row = {"layer": layer, "kind": kind, "block": block, "tokens_in": tokens_in,
           "tokens_out": tokens_out, "in_numel": in_numel, "out_numel": out_numel,
           "gemm_m": m, "gemm_n": n, "gemm_k": k, "gemm_groups": groups,
           "weight_numel": weight_numel, "in_value_kind": value_kind}
    if timesteps is not None:
        row["timesteps"] = timesteps
    return row


def _lif(layer, block, tokens, numel):
    return _row(layer, "lif", block, tokens_in=tokens, tokens_out=tokens, in_numel=numel,
                out_numel=numel, value_kind="real")


def _linear(layer, block, tokens, d_in, d_out, value_kind):
    return _row(layer, "linear", block, tokens_in=tokens, tokens_out=tokens,
                in_numel=tokens * d_in, out_numel=tokens * d_out, m=tokens, n=d_out, k=d_in,
                groups=1, weight_numel=d_in * d_out, value_kind=value_kind)


def spikformer_shapes(*, depth=2, dim=32, heads=4, image=16, in_channels=3, pools=2,
                      classes=10, mlp_ratio=4, selector=False):
    """Layer shape rows (trace.SHAPE_COLUMNS + in_value_kind, + timesteps for 1-step rows)."""
    rows = []
    side, channels = image, in_channels
    widths = [dim // 8, dim // 4, dim // 2, dim]
    for i, width in enumerate(widths):
        suffix = "" if i == 0 else str(i)
        tokens = side * side
        rows.append(_row(f"patch_embed.proj_conv{suffix}", "conv", -1, tokens_in=tokens,
                         tokens_out=tokens, in_numel=channels * tokens, out_numel=width * tokens,
                         m=tokens, n=width, k=channels * 9, groups=1,
                         weight_numel=width * channels * 9,
                         value_kind="real" if i == 0 else "spike"))
        rows.append(_lif(f"patch_embed.proj_lif{suffix}", -1, tokens, width * tokens))
        if i >= len(widths) - pools:
            out_side = side // 2
            rows.append(_row(f"patch_embed.maxpool{suffix}", "pool", -1, tokens_in=tokens,
                             tokens_out=out_side * out_side, in_numel=width * tokens,
                             out_numel=width * out_side * out_side))
            side = out_side
        channels = width
    tokens = side * side
    rows.append(_row("patch_embed.rpe_conv", "conv", -1, tokens_in=tokens, tokens_out=tokens,
                     in_numel=dim * tokens, out_numel=dim * tokens, m=tokens, n=dim,
                     k=dim * 9, groups=1, weight_numel=dim * dim * 9))
    rows.append(_lif("patch_embed.rpe_lif", -1, tokens, dim * tokens))
    head_dim = dim // heads
    for b in range(depth):
        p = f"block.{b}"
        if selector and b >= 1:
            rows.append(_row(f"token_selectors.{b}.mlp.0", "selector", b, tokens_in=tokens,
                             tokens_out=tokens, in_numel=tokens * dim,
                             out_numel=tokens * dim // 2, m=tokens, n=dim // 2, k=dim,
                             groups=1, weight_numel=dim * dim // 2, value_kind="rate",
                             timesteps=1))
            rows.append(_row(f"token_selectors.{b}.mlp.2", "selector", b, tokens_in=tokens,
                             tokens_out=tokens, in_numel=tokens * dim // 2,
                             out_numel=tokens * 2, m=tokens, n=2, k=dim // 2, groups=1,
                             weight_numel=dim, value_kind="real", timesteps=1))
        for name in ("q", "k", "v"):
            rows.append(_linear(f"{p}.attn.{name}_linear", b, tokens, dim, dim, "integer"))
            rows.append(_lif(f"{p}.attn.{name}_lif", b, tokens, tokens * dim))
        rows.append(_row(f"{p}.attn.qk_matmul", "attn_qk", b, tokens_in=tokens,
                         tokens_out=tokens, in_numel=tokens * dim,
                         out_numel=heads * tokens * tokens, m=tokens, n=tokens, k=head_dim,
                         groups=heads))
        rows.append(_row(f"{p}.attn.av_matmul", "attn_v", b, tokens_in=tokens,
                         tokens_out=tokens, in_numel=heads * tokens * tokens,
                         out_numel=tokens * dim, m=tokens, n=head_dim, k=tokens, groups=heads,
                         value_kind="integer"))
        rows.append(_lif(f"{p}.attn.attn_lif", b, tokens, tokens * dim))
        rows.append(_linear(f"{p}.attn.proj_linear", b, tokens, dim, dim, "spike"))
        rows.append(_lif(f"{p}.attn.proj_lif", b, tokens, tokens * dim))
        hidden = dim * mlp_ratio
        rows.append(_linear(f"{p}.mlp.fc1_linear", b, tokens, dim, hidden, "integer"))
        rows.append(_lif(f"{p}.mlp.fc1_lif", b, tokens, tokens * hidden))
        rows.append(_linear(f"{p}.mlp.fc2_linear", b, tokens, hidden, dim, "spike"))
        rows.append(_lif(f"{p}.mlp.fc2_lif", b, tokens, tokens * dim))
    rows.append(_row("head", "head", -1, tokens_in=1, tokens_out=1, in_numel=dim,
                     out_numel=classes, m=1, n=classes, k=dim, groups=1,
                     weight_numel=dim * classes, value_kind="rate", timesteps=1))
    return rows
