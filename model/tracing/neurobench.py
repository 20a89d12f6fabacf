"""NeuroBench's metrics of a recorded model, under NeuroBench's names and definitions.

A quantity reported under another tool's name follows that tool's definition, read from
NeuroBench's source (NeuroBench/neurobench, `neurobench/metrics/`):

* `synaptic_operations` (workload/synaptic_operations.py, utils/layers/macs.py, input.py,
  binary_copy.py): for every call of an nn.Linear / nn.Conv* layer (`connection_layers`),
  the layer is run with its weights binarised (non-zero -> 1) and bias zeroed on its
  input binarised the same way; the output's sum is the call's effective operations. The
  call counts as accumulates (`Effective_ACs`) when every input value is -1, 0 or 1, else
  as multiply-accumulates (`Effective_MACs`): decided per call, i.e. per batch. `Dense`
  runs the same with all-ones weights on an all-ones input: a convolution's zero padding
  is not part of its input, so taps on the padding do not count. (The papers' GFLOPs,
  the trace's `dense_macs`, count every tap; for the 3x3 SPS convs the two differ.) Each
  is divided by the number of samples. Attention products are not layers: not counted.
* `activation_sparsity` (workload/activation_sparsity.py): zero outputs over all outputs
  of the activation (spiking neuron) layers, over all timesteps and samples.
* `connection_sparsity` (static/connection_sparsity.py): zero weights over all weights of
  the Linear / Conv layers (biases left out). NeuroBench rounds it to 4 decimals; this is
  the unrounded ratio.
* `footprint` (static/footprint.py): bytes of every parameter and buffer.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from sparsespikformer.model.tracing.recorder import LayerRecord

# Kinds of trace records made by nn.Linear / nn.Conv* calls (NeuroBench's connection layers).
SYNAPTIC_KINDS = ("conv", "linear", "head", "selector")


def neurobench_metrics(model: nn.Module, records: Iterable[LayerRecord], samples: int) -> dict:
    """The trace manifest's `neurobench` block for `samples` recorded samples: per-sample
    synaptic operations, sparsities, footprint (bytes); see the module docstring."""
    records = list(records)
    synaptic = [r for r in records if r.kind in SYNAPTIC_KINDS and r.weight is not None]
    neurons = [r for r in records if r.kind == "lif"]
    spikes = sum(r.out_nonzero for r in neurons)
    outputs = sum(r.out_count for r in neurons)
    weights = [m.weight for m in model.modules()
               if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))]
    macs = acs = 0.0
    for record in synaptic:
        for batch, ternary in zip(record.batch_counts, record.batch_ternary, strict=True):
            pairs = float(batch.nonzero_pairs.sum())
            acs, macs = (acs + pairs, macs) if ternary else (acs, macs + pairs)
    return {
        "activation_sparsity": 1.0 - spikes / outputs if outputs else 0.0,
        "connection_sparsity": (sum(int((w == 0).sum()) for w in weights)
                                / max(sum(w.numel() for w in weights), 1)),
        "synaptic_operations": {
            "Effective_MACs": macs / samples,
            "Effective_ACs": acs / samples,
            "Dense": sum(dense_without_padding(r) for r in synaptic),
        },
        "footprint": sum(t.numel() * t.element_size()
                         for t in list(model.parameters()) + list(model.buffers())),
    }


def dense_without_padding(record: LayerRecord) -> float:
    """NeuroBench's `Dense` of one layer per sample: every (input element, weight) pair,
    padding taps excluded. A conv: T · C_out · C_in · taps inside; else T · m · n · k."""
    m, n, k, _ = record.gemm
    if record.taps_inside is None:
        return float(record.timesteps * m * n * k)
    c_in = record.in_shape[1]
    return float(record.timesteps) * n * c_in * record.taps_inside
