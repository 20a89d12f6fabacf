"""sparsespikformer.model: the spiking transformer side of the co-design tool.

Spikformer and its LIF neurons (`model.nn`), the preset registry (`create_model`,
`list_models`), datasets (`load_dataset`), training (`train`, `TrainConfig`), lottery-ticket
pruning (`run_lottery`, `LotteryConfig`), token selectors, GFLOPs, reference checkpoints and
trace recording (`record_trace`). Subpackages: `nn`, `data`, `training`, `pruning`, `tracing`.

Names are imported lazily (first attribute access), so `import sparsespikformer.model` stays
cheap. To export a name, add one line to `_EXPORTS` (public name -> submodule) and one to the
`TYPE_CHECKING` block (so editors and type checkers see it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sparsespikformer.simulator.lazy import lazy_exports

_EXPORTS = {
    "LIF": "nn.lif",
    "lif_multistep": "nn.lif",
    "Spikformer": "nn.spikformer",
    "SpikformerConfig": "nn.config",
    "gflops": "nn.flops",
    "count_macs": "nn.flops",
    "create_model": "registry",
    "list_models": "registry",
    "get_preset_config": "registry",
    "register": "registry",
    "register_preset": "registry",
    "convert_reference_state_dict": "reference_checkpoint",
    "load_reference_checkpoint": "reference_checkpoint",
    "load_dataset": "data",
    "train": "training.loop",
    "TrainConfig": "training.loop",
    "run_lottery": "pruning.lottery",
    "LotteryConfig": "pruning.lottery",
    "LotteryTask": "pruning.lottery",
    "record_trace": "tracing.record",
    "layer_shapes": "tracing.record",
}

if TYPE_CHECKING:
    from sparsespikformer.model.data import load_dataset
    from sparsespikformer.model.nn.config import SpikformerConfig
    from sparsespikformer.model.nn.flops import count_macs, gflops
    from sparsespikformer.model.nn.lif import LIF, lif_multistep
    from sparsespikformer.model.nn.spikformer import Spikformer
    from sparsespikformer.model.pruning.lottery import LotteryConfig, LotteryTask, run_lottery
    from sparsespikformer.model.reference_checkpoint import (
        convert_reference_state_dict,
        load_reference_checkpoint,
    )
    from sparsespikformer.model.registry import (
        create_model,
        get_preset_config,
        list_models,
        register,
        register_preset,
    )
    from sparsespikformer.model.tracing.record import layer_shapes, record_trace
    from sparsespikformer.model.training.loop import TrainConfig, train

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
