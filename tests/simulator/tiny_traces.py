"""Exact one-layer traces built from explicit tensors, and the fold rule by brute force.

After the field cases' `common/tinytrace.py` (shared/field-cases), with the current schema's
names and the per-sample row events (schema 3) that a recorded trace carries. Every count is
computed here from the tensors, never by the simulator.
"""

import numpy as np
import pandas as pd

from sparsespikformer.simulator.trace import Trace, base_manifest, shape_string


def _kind_of(x):
    if np.all((x == 0) | (x == 1)):
        return "spike"
    if np.all(np.mod(x, 1) == 0) and x.min() >= 0:
        return "integer"
    return "rate" if x.min() >= 0 and x.max() <= 1 else "real"


def _row(name, kind, block, x_shape, y_shape, T, M, N, K, G, numel, nnz, density, vk, x,
         tokens_in=None):
    return dict(layer=name, kind=kind, block=block, in_shape=shape_string(x_shape),
                out_shape=shape_string(y_shape), timesteps=T, tokens_in=tokens_in or M,
                tokens_out=M, in_numel=int(np.prod(x_shape[1:])),
                out_numel=int(np.prod(y_shape[1:])), gemm_m=M, gemm_n=N, gemm_k=K,
                gemm_groups=G, weight_numel=numel, weight_nnz=nnz, operand_density=density,
                in_value_kind=vk, input_is_spike=vk == "spike", in_value_min=float(x.min()),
                in_value_max=float(x.max()), in_value_mean=float(x.mean()),
                in_nonzero_fraction=float((x != 0).mean()), out_nonzero_fraction=0.1)


def gemm_row(name, x, w, kind="linear", block=-1, row_events=True):
    """x: (S, T, M, K) per-sample inputs, w: (K, N) weights."""
    x, w = np.asarray(x, float), np.asarray(w, float)
    S, T, M, K = x.shape
    N = w.shape[1]
    a, fan_nz = np.abs(x), (w != 0).sum(1)
    row = _row(name, kind, block, (T, M, K), (T, M, N), T, M, N, K, 1, K * N,
               int((w != 0).sum()), float((w != 0).mean()), _kind_of(x), x)
    row.update(dense_macs=float(T * M * N * K), sops=float((a.sum((1, 2, 3)) * N).mean()),
               effective_ops=float((a * fan_nz).sum((1, 2, 3)).mean()),
               nonzero_pairs=float(((x != 0) * fan_nz).sum((1, 2, 3)).mean()))
    arrays = {"events_per_step_token": a.sum(3).mean(0),
              "sample_effective_ops": (a * fan_nz).sum((1, 2, 3)),
              "sample_in_events": a.sum((1, 2, 3)),
              "nnz_per_out_channel": (w != 0).sum(0).astype(np.int64)}
    if row_events:
        arrays["sample_row_events"] = a.sum(3)[:, :, None, :]
    return row, arrays


def lif_row(name, T, M, N, rate=0.1, S=1, block=-1):
    ev = np.full((T, M), rate * N)
    row = _row(name, "lif", block, (T, M, N), (T, M, N), T, M, 0, 0, 0, 0, 0, 1.0, "real",
               np.array([-1.0, 1.0]))
    row.update(gemm_m=0, in_nonzero_fraction=1.0, out_nonzero_fraction=rate, dense_macs=0.0,
               sops=0.0, effective_ops=0.0, nonzero_pairs=0.0)
    return row, {"events_per_step_token": ev, "sample_effective_ops": np.zeros(S),
                 "sample_in_events": np.full(S, ev.sum())}


def im2col(x, k=3, pad=1):
    """x: (C, H, W) -> (H*W, C*k*k), stride 1, 'same' padding."""
    C, H, W = x.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((H * W, C, k, k))
    for i in range(H):
        for j in range(W):
            cols[i * W + j] = xp[:, i:i + k, j:j + k]
    return cols.reshape(H * W, C * k * k)


def conv_row(name, x, w, row_events=True):
    """x: (S, T, C, H, W), w: (Co, C, 3, 3): a 3x3 'same' conv, stride 1 (SPS)."""
    x, w = np.asarray(x, float), np.asarray(w, float)
    S, T, C, H, W = x.shape
    Co, K, M = w.shape[0], C * 9, H * W
    wk = w.reshape(Co, K).T
    fan_nz = (wk != 0).sum(1)
    cols = np.array([[im2col(x[s, t]) for t in range(T)] for s in range(S)])  # (S,T,M,K)
    a = np.abs(cols)
    row = _row(name, "conv", -1, (T, C, H, W), (T, Co, H, W), T, M, Co, K, 1, K * Co,
               int((wk != 0).sum()), float((wk != 0).mean()), _kind_of(x), x, tokens_in=H * W)
    row.update(dense_macs=float(T * M * Co * K), sops=float((a.sum((1, 2, 3)) * Co).mean()),
               effective_ops=float((a * fan_nz).sum((1, 2, 3)).mean()),
               nonzero_pairs=float(((cols != 0) * fan_nz).sum((1, 2, 3)).mean()))
    arrays = {"events_per_step_token": np.abs(x).sum(2).reshape(S, T, M).mean(0),
              "sample_effective_ops": (a * fan_nz).sum((1, 2, 3)),
              "sample_in_events": np.abs(x).sum((1, 2, 3, 4)),
              "nnz_per_out_channel": (wk != 0).sum(0).astype(np.int64)}
    if row_events:
        arrays["sample_row_events"] = a.sum(3)[:, :, None, :]
    return row, arrays, cols


def attn_row(name, a, b, kind="attn_qk", block=0, row_events=True):
    """a: (S, T, G, M, K) first operand (Q), b: (S, T, G, K, N) second (Kᵀ)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    S, T, G, M, K = a.shape
    N = b.shape[-1]
    fan_nz = (b != 0).sum(-1)[:, :, :, None, :]
    ab = np.abs(a)
    row = _row(name, kind, block, (T, G, M, K), (T, G, M, N), T, M, N, K, G, 0, 0,
               float((b != 0).mean()), _kind_of(a), a)
    row.update(dense_macs=float(T * G * M * N * K),
               sops=float((ab.sum((1, 2, 3, 4)) * N).mean()),
               effective_ops=float((ab * fan_nz).sum((1, 2, 3, 4)).mean()),
               nonzero_pairs=float(((a != 0) * fan_nz).sum((1, 2, 3, 4)).mean()))
    arrays = {"events_per_step_token": ab.sum((2, 4)).mean(0),
              "sample_effective_ops": (ab * fan_nz).sum((1, 2, 3, 4)),
              "sample_in_events": ab.sum((1, 2, 3, 4))}
    if row_events:
        arrays["sample_row_events"] = ab.sum(4)
    return row, arrays


def make_trace(rows_arrays, T):
    rows = [r for r, *_ in rows_arrays]
    arrays = {r["layer"]: a for r, a, *_ in rows_arrays}
    S = len(next(iter(arrays.values()))["sample_in_events"])
    manifest = base_manifest(source="synthetic", timesteps=T, input_shape=[1],
                             dataset="synthetic", num_samples=S)
    return Trace(manifest=manifest, layers=pd.DataFrame(rows), arrays=arrays)


def os_reference_cycles(cols, w_kn, rows, cols_pe, stack_time=False):
    """The simulator's own output-stationary fold rule by brute force, one sample: per run
    and fold (R consecutive rows x C output channels) the fold streams as long as its busiest
    row's events (value v = v events), plus fill/drain R + C - 2; SCALE-Sim's -1 per run.
    A run is a timestep, or with `stack_time` (time-parallel) one run over the T x M rows
    stacked timestep after timestep. cols: (T, M, K); w_kn: (K, N)."""
    N = w_kn.shape[1]
    work = np.abs(cols).sum(-1)  # (T, M) events per row
    runs = [work.reshape(-1)] if stack_time else list(work)
    total = 0.0
    for run_work in runs:
        run = sum(rows + cols_pe - 2 + run_work[m0:m0 + rows].max()
                  for m0 in range(0, run_work.size, rows) for _ in range(0, N, cols_pe))
        total += run - 1
    return total


def action_counts(result):
    """A simulation's breakdown counts indexed by (layer, component, action)."""
    return result.layers.set_index(["layer", "component", "action"])["count"]
