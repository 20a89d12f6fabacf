"""Test oracles: a per-timestep LIF and a literal re-statement of the reference forward passes.

`reference_lif` follows spikingjelly's documented MultiStepLIFNode equations (torch backend:
a Python loop of charge / fire / reset with plain autograd). `reference_forward` re-states
ZK-Zhou/spikformer's forward code for each form (cifar10/model.py, imagenet/model.py,
cifar10dvs/model.py) op by op, in the reference's own tensor layouts ((T, B, C, H, W) for the
ImageNet form, (T, B, C, N) for DVS), reading the weights from one of our models. It shares
no forward code with the package: only the nn.Conv/Linear/BatchNorm/MaxPool modules.
"""

import torch


class _SigmoidHeaviside(torch.autograd.Function):
    """spikingjelly.surrogate.Sigmoid: heaviside forward, alpha*sg*(1-sg) backward."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        sgax = (x * ctx.alpha).sigmoid_()
        return grad_output * (1.0 - sgax) * sgax * ctx.alpha, None


def reference_lif(x_seq, tau=2.0, v_threshold=1.0, v_reset=0.0, alpha=4.0):
    v = torch.full_like(x_seq[0], v_reset)
    spikes = []
    for t in range(x_seq.shape[0]):
        if v_reset == 0.0:
            v = v + (x_seq[t] - v) / tau  # neuronal_charge, decay_input
        else:
            v = v + (x_seq[t] - (v - v_reset)) / tau
        spike = _SigmoidHeaviside.apply(v - v_threshold, alpha)  # neuronal_fire
        spike_d = spike.detach()  # detach_reset=True
        v = (1.0 - spike_d) * v + spike_d * v_reset  # hard reset
        spikes.append(spike)
    return torch.stack(spikes)


def _sps(pe, x, form, pool_after):
    T, B, C, H, W = x.shape
    names = ["", "1", "2", "3"]
    x = x.flatten(0, 1)
    h, w = H, W
    for i, sfx in enumerate(names):
        x = getattr(pe, f"proj_conv{sfx}")(x)
        x = getattr(pe, f"proj_bn{sfx}")(x).reshape(T, B, -1, h, w).contiguous()
        x = reference_lif(x).flatten(0, 1).contiguous()
        if i in pool_after:
            x = torch.nn.functional.max_pool2d(x, kernel_size=3, stride=2, padding=1)
            h, w = h // 2, w // 2
    if form == "dvs":
        x_rpe = pe.rpe_bn(pe.rpe_conv(x)).reshape(T, B, -1, h, w).contiguous()
        x_rpe = reference_lif(x_rpe).flatten(0, 1)
        x = x + x_rpe
        return x.reshape(T, B, -1, h * w).contiguous()  # (T, B, C, N)
    x_feat = x.reshape(T, B, -1, h, w).contiguous()
    x = pe.rpe_conv(x)
    x = pe.rpe_bn(x).reshape(T, B, -1, h, w).contiguous()
    x = reference_lif(x)
    x = x + x_feat
    if form == "cifar":
        return x.flatten(-2).transpose(-1, -2)  # (T, B, N, C) view
    return x  # (T, B, C, H, W)


def _cifar_block(blk, x, heads, scale):
    a = blk.attn
    T, B, N, C = x.shape
    x_for_qkv = x.flatten(0, 1)
    outs = []
    for name in ("q", "k", "v"):
        y = getattr(a, f"{name}_linear")(x_for_qkv)
        y = getattr(a, f"{name}_bn")(y.transpose(-1, -2)).transpose(-1, -2)
        y = y.reshape(T, B, N, C).contiguous()
        y = reference_lif(y)
        outs.append(y.reshape(T, B, N, heads, C // heads).permute(0, 1, 3, 2, 4).contiguous())
    q, k, v = outs
    attn = (q @ k.transpose(-2, -1)) * scale
    y = attn @ v
    y = y.transpose(2, 3).reshape(T, B, N, C).contiguous()
    y = reference_lif(y, v_threshold=0.5).flatten(0, 1)
    y = a.proj_bn(a.proj_linear(y).transpose(-1, -2)).transpose(-1, -2).reshape(T, B, N, C)
    x = x + reference_lif(y)
    m = blk.mlp
    hidden = m.fc1_linear.out_features
    y = m.fc1_linear(x.flatten(0, 1))
    y = m.fc1_bn(y.transpose(-1, -2)).transpose(-1, -2).reshape(T, B, N, hidden).contiguous()
    y = reference_lif(y)
    y = m.fc2_linear(y.flatten(0, 1))
    y = m.fc2_bn(y.transpose(-1, -2)).transpose(-1, -2).reshape(T, B, N, C).contiguous()
    return x + reference_lif(y)


def _conv_attention(a, x, heads, scale, kv_first):
    T, B, C, N = x.shape
    x_for_qkv = x.flatten(0, 1)
    outs = []
    for name in ("q", "k", "v"):
        y = getattr(a, f"{name}_bn")(getattr(a, f"{name}_conv")(x_for_qkv))
        y = reference_lif(y.reshape(T, B, C, N).contiguous())
        y = y.transpose(-1, -2).reshape(T, B, N, heads, C // heads)
        outs.append(y.permute(0, 1, 3, 2, 4).contiguous())
    q, k, v = outs
    if kv_first:  # imagenet/model.py
        y = (q @ (k.transpose(-2, -1) @ v)) * scale
    else:  # cifar10dvs/model.py
        y = ((q @ k.transpose(-2, -1)) @ v) * scale
    y = y.transpose(3, 4).reshape(T, B, C, N).contiguous()
    y = reference_lif(y, v_threshold=0.5).flatten(0, 1)
    return reference_lif(a.proj_bn(a.proj_conv(y)).reshape(T, B, C, N))  # (T, B, C, N)


def _imagenet_block(blk, x, heads, scale):
    T, B, C, H, W = x.shape
    x = x + _conv_attention(blk.attn, x.flatten(3), heads, scale, True).reshape(T, B, C, H, W)
    m = blk.mlp
    hidden = m.fc1_conv.out_channels
    y = m.fc1_bn(m.fc1_conv(x.flatten(0, 1))).reshape(T, B, hidden, H, W).contiguous()
    y = reference_lif(y)
    y = m.fc2_bn(m.fc2_conv(y.flatten(0, 1))).reshape(T, B, C, H, W).contiguous()
    return x + reference_lif(y)


def _dvs_block(blk, x, heads, scale):
    T, B, C, N = x.shape
    x = x + _conv_attention(blk.attn, x, heads, scale, False)
    m = blk.mlp
    hidden = m.fc1_conv.out_channels
    y = m.fc1_bn(m.fc1_conv(x.flatten(0, 1))).reshape(T, B, hidden, N).contiguous()
    y = reference_lif(y)
    y = m.fc2_bn(m.fc2_conv(y.flatten(0, 1))).reshape(T, B, C, N).contiguous()
    return x + reference_lif(y)


def reference_forward(model, x):
    """Logits of `model`'s weights run through the reference code path of its form."""
    cfg = model.config
    if cfg.form == "dvs":
        frames = x.permute(1, 0, 2, 3, 4)
    else:
        frames = x.unsqueeze(0).repeat(cfg.timesteps, 1, 1, 1, 1)
    feats = _sps(model.patch_embed, frames, cfg.form, cfg.sps_pool_after)
    for blk in model.block:
        if cfg.form == "cifar":
            feats = _cifar_block(blk, feats, cfg.num_heads, cfg.attn_scale)
        elif cfg.form == "imagenet":
            feats = _imagenet_block(blk, feats, cfg.num_heads, cfg.attn_scale)
        else:
            feats = _dvs_block(blk, feats, cfg.num_heads, cfg.attn_scale)
    if cfg.form == "cifar":
        pooled = feats.mean(2)
    elif cfg.form == "imagenet":
        pooled = feats.flatten(3).mean(3)
    else:
        pooled = feats.mean(3)
    return model.head(pooled.mean(0))
