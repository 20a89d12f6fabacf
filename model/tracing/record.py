"""`record_trace` and `layer_shapes`: a model (and data) in, a `Trace` out.

`record_trace` runs real samples through the model in eval mode under a `TraceRecorder`
and turns its per-layer records into the schema of `sparsespikformer.simulator.trace`.
`layer_shapes` does the same forward on the meta device, so a full-size preset's layer
table (for `synthetic_trace`) costs no compute and no weights.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from sparsespikformer.model.nn.token_selector import token_selectors_of
from sparsespikformer.model.pruning.masks import model_weight_sparsity
from sparsespikformer.model.tracing.counts import LayerCounts
from sparsespikformer.model.tracing.neurobench import neurobench_metrics
from sparsespikformer.model.tracing.recorder import LayerRecord, TraceRecorder, _block_of
from sparsespikformer.model.tracing.row_events import RowEventRecorder
from sparsespikformer.model.training.devices import autocast
from sparsespikformer.simulator.errors import InputError
from sparsespikformer.simulator.trace import (
    SAMPLE_ROW_EVENTS_ARRAY,
    Trace,
    base_manifest,
    shape_string,
)

log = logging.getLogger(__name__)


# Block layers whose input is the residual stream (sums of spikes, small integers).
_RESIDUAL_INPUT_SUFFIXES = ("q_linear", "k_linear", "v_linear", "q_conv", "k_conv", "v_conv",
                            "fc1_linear", "fc1_conv")


@torch.no_grad()
def record_trace(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor | None = None, *,
                 batch_size: int = 64, preset: str = "", dataset: str = "", seed: int = 0,
                 real_stats_samples: int | None = None,
                 progress: bool = False, amp: str = "off") -> Trace:
    """Trace `inputs` (S, C, H, W) or (S, T, C, H, W) through `model` (put in eval mode).

    Runs on the model's device (the inputs follow it batch by batch; the statistics are
    reduced there and only small sums come back), under autocast for `amp` (bf16/fp16:
    recorded in the manifest's optional `amp` key; the LIF and spike products stay float32,
    the recorder reads half-precision tensors in float32, which is exact). Counts are exact
    functions of the spikes, so a trace recorded on another device equals this one wherever
    the spikes do (see docs/trace-format.md for the tolerance).

    `labels` (S,) give the manifest's accuracy. Counts are per sample, averaged over S,
    exact over every sample. `real_stats_samples` trades some exactness for speed: the
    statistics no count depends on (the range, mean and non-zero fraction of LIF membrane
    currents; the non-zero fraction of conv / linear / second attention product outputs)
    then come only from the batches that start within the first this many samples (default
    None: every batch); the manifest records how many samples they cover.
    """
    if inputs.shape[0] < 1:
        raise InputError("record_trace: no input samples")
    if batch_size < 1:
        raise InputError(f"record_trace: batch_size must be >= 1, got {batch_size}")
    if real_stats_samples is not None and real_stats_samples < 1:
        raise InputError("record_trace: real_stats_samples must be >= 1 or None, "
                         f"got {real_stats_samples}")
    if labels is not None and labels.shape[0] != inputs.shape[0]:
        raise InputError(f"record_trace: {inputs.shape[0]} inputs but {labels.shape[0]} labels")
    config = model.config
    device = _model_device(model)
    was_training = model.training
    model.eval()
    correct = described = 0
    recorder = TraceRecorder(model, config.timesteps, tokens_last=config.form != "cifar")
    row_events = RowEventRecorder(model, config.timesteps)
    try:
        with recorder, row_events:
            starts = range(0, inputs.shape[0], batch_size)
            for start in tqdm(starts, desc="trace", unit="batch", disable=not progress):
                batch = inputs[start:start + batch_size].to(device)
                recorder.describe_real_values = (real_stats_samples is None
                                                 or start < real_stats_samples)
                described += batch.shape[0] if recorder.describe_real_values else 0
                with autocast(device, amp):
                    logits = model(batch)
                if labels is not None:
                    batch_labels = labels[start:start + batch_size]
                    correct += int((logits.argmax(dim=1).cpu() == batch_labels).sum())
    finally:
        model.train(was_training)
    samples = inputs.shape[0]
    counts = {name: record.counts() for name, record in recorder.records.items()}
    per_sample_rows = row_events.events()
    rows, arrays = zip(*(_layer_row(record, counts[name], samples, per_sample_rows.get(name))
                         for name, record in recorder.records.items()), strict=True)
    manifest = base_manifest(
        source="recorded", preset=preset, model_config=config.to_dict(),
        timesteps=config.timesteps, input_shape=_sample_shape(inputs), dataset=dataset,
        num_samples=samples, weight_sparsity=model_weight_sparsity(model),
        selector_scorer=_selector_scorer(model), keep_ratios=_keep_ratios(model),
        accuracy=None if labels is None else correct / samples, seed=seed,
        neurobench=neurobench_metrics(model, recorder.records.values(), samples),
        real_stats_samples=described,
    )
    if amp != "off":
        manifest["amp"] = amp
    layers = pd.DataFrame(list(rows))
    return Trace(manifest=manifest, layers=layers,
                 arrays={row["layer"]: array for row, array in zip(rows, arrays, strict=True)})


def _model_device(model: nn.Module) -> torch.device:
    first = next(iter(model.parameters()), None)
    return torch.device("cpu") if first is None else first.device


def _sample_shape(inputs: torch.Tensor) -> list[int]:
    # (S, C, H, W) -> [C, H, W]; event frames (S, T, C, H, W) -> [C, H, W]
    return [int(s) for s in inputs.shape[-3:]]


def _layer_row(record: LayerRecord, counts: LayerCounts, samples: int,
               row_events: np.ndarray | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    per_sample = {key: getattr(counts, key)
                  for key in ("sops", "effective_ops", "nonzero_pairs", "in_events")}
    n = record.gemm[1]
    weight = record.weight
    weight_numel = 0 if weight is None else int(weight.numel())
    weight_nnz = 0 if weight is None else int(torch.count_nonzero(weight))
    row = _shape_row(record)
    row.update({
        "weight_nnz": weight_nnz,
        "operand_density": _operand_density(record, weight_numel, weight_nnz),
        "in_value_kind": _value_kind(record), "input_is_spike": record.values_binary,
        "in_value_min": record.value_min, "in_value_max": record.value_max,
        "in_value_mean": record.value_sum / record.value_count,
        "in_nonzero_fraction": record.value_nonzero / record.value_count,
        "out_nonzero_fraction": record.out_nonzero / max(record.out_count, 1),
        "dense_macs": float(record.timesteps * np.prod(record.gemm)),
        "sops": float(per_sample["sops"].mean()),
        "effective_ops": float(per_sample["effective_ops"].mean()),
        "nonzero_pairs": float(per_sample["nonzero_pairs"].mean()),
    })
    arrays = {
        "events_per_step_token": counts.events_per_step_token / samples,
        "sample_effective_ops": per_sample["effective_ops"],
        "sample_in_events": per_sample["in_events"],
    }
    if record.kind in ("conv", "linear", "head", "selector"):
        arrays["nnz_per_out_channel"] = _nonzeros_per_out_channel(weight, n)
    if row_events is not None and record.gemm[0] > 0:
        arrays[SAMPLE_ROW_EVENTS_ARRAY] = row_events  # (kept samples, T, groups, m)
    return row, arrays


def _operand_density(record: LayerRecord, weight_numel: int, weight_nnz: int) -> float:
    if weight_numel:
        return weight_nnz / weight_numel
    if record.operand_count:
        return record.operand_nonzero / record.operand_count
    return 0.0


def _value_kind(record: LayerRecord) -> str:
    if record.values_binary:
        return "spike"
    if record.values_integer and record.value_min >= 0:
        return "integer"
    if record.kind in ("head", "selector") and record.value_min >= 0:
        return "rate"  # an average of spikes
    return "real"


def _nonzeros_per_out_channel(weight: torch.Tensor | None, channels: int) -> np.ndarray:
    if weight is None:
        return np.zeros(channels, dtype=np.int64)
    return (weight != 0).flatten(1).sum(dim=1).cpu().numpy().astype(np.int64)


def _selector_scorer(model: nn.Module) -> str | None:
    selectors = token_selectors_of(model)
    return selectors[0].scorer if selectors else None


def _keep_ratios(model: nn.Module) -> list[float]:
    return [s.keep_ratio ** s.ordinal for s in token_selectors_of(model)]


def layer_shapes(model: nn.Module, input_shape: tuple[int, ...]) -> pd.DataFrame:
    """Shape columns of every layer (for `synthetic_trace`), from a forward on the meta device.

    `input_shape` is one sample's shape, (C, H, W) or (T, C, H, W). No weights or compute
    are needed: the model is copied to the meta device first.
    """
    meta_model = _to_meta(model)
    recorder = TraceRecorder(meta_model, model.config.timesteps,
                             tokens_last=model.config.form != "cifar", shapes_only=True)
    with torch.no_grad(), recorder:
        meta_model(torch.empty((1, *input_shape), device="meta"))
    return pd.DataFrame([_shape_row(r) for r in recorder.records.values()])


def _to_meta(model: nn.Module) -> nn.Module:
    import copy

    meta_model = copy.deepcopy(model).to("meta") if _has_data(model) else model
    meta_model.eval()
    return meta_model


def _has_data(model: nn.Module) -> bool:
    return any(not p.is_meta for p in model.parameters())


def _shape_row(record: LayerRecord) -> dict:
    m, n, k, groups = record.gemm
    return {
        "layer": record.name, "kind": record.kind, "block": _block_of(record.name),
        "in_shape": shape_string(record.in_shape), "out_shape": shape_string(record.out_shape),
        "timesteps": record.timesteps, "tokens_in": record.tokens_in,
        "tokens_out": record.tokens_out,
        "in_numel": int(np.prod(record.in_shape[1:])),
        "out_numel": int(np.prod(record.out_shape[1:])),
        "gemm_m": m, "gemm_n": n, "gemm_k": k, "gemm_groups": groups,
        "weight_numel": 0 if record.weight is None else int(record.weight.numel()),
        "in_value_kind": _assumed_value_kind(record),
    }


def _assumed_value_kind(record: LayerRecord) -> str:
    """What a layer's input is in a Spikformer, for shape-only (synthetic) traces."""
    name = record.name
    if name == "patch_embed.proj_conv":
        return "real"
    if record.kind == "head" or name.endswith("mlp.0"):
        return "rate"
    if record.kind == "selector" and record.weight is not None:
        return "real"  # GELU output of the selector MLP
    if record.kind == "attn_v" or name.endswith(_RESIDUAL_INPUT_SUFFIXES):
        return "integer"
    if record.kind in ("lif",):
        return "real"
    return "spike"
