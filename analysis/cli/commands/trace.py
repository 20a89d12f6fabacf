"""`sparsespikformer trace`: record a per-layer spike and sparsity trace of a model.

Real mode runs `--samples` test images through the model (weights from `--checkpoint`);
`--synthetic` builds the trace of a full-size preset from its layer shapes and assumed
statistics, with no weights and no data.
"""

from __future__ import annotations

import argparse
import logging

from sparsespikformer.analysis.cli.arg_groups import (
    add_progress_flag,
    add_runtime,
    progress_wanted,
    runtime_of,
)
from sparsespikformer.analysis.cli.arg_types import (
    finite_float,
    output_folder,
    positive_int,
    rng_seed,
)
from sparsespikformer.simulator.errors import InputError

HELP = "record a per-layer spike/sparsity trace (real samples, or --synthetic statistics)"

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", help="model preset (default: the checkpoint's)")
    parser.add_argument("--checkpoint", help="weights to trace: checkpoint.pt, a reference / "
                        "timm checkpoint, or a state dict, wrapped or not")
    parser.add_argument("--ema", action="store_true",
                        help="trace the checkpoint's EMA weights (timm state_dict_ema, ...)")
    parser.add_argument("--data", help="data spec (default: the checkpoint's, else digits)")
    parser.add_argument("--split", choices=("train", "test"), default="test")
    parser.add_argument("--samples", type=positive_int, default=256, help="samples to trace")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--img-size", type=positive_int, help="input size (default: as trained)")
    parser.add_argument("--seed", type=rng_seed, default=0)
    parser.add_argument("--real-stats-samples", default="all", metavar="N|all",
                        help="measure the statistics no count needs (LIF membrane currents, "
                             "non-zero fraction of pre-activation outputs) on the first N "
                             "samples only, in whole batches: faster (default: all)")
    parser.add_argument("--out", required=True, type=output_folder,
                        help="trace directory to write")
    add_progress_flag(parser)
    add_runtime(parser)
    synthetic = parser.add_argument_group("synthetic traces (no weights, no data)")
    synthetic.add_argument("--synthetic", action="store_true",
                           help="assume statistics instead of running samples")
    synthetic.add_argument("--firing-rate", type=finite_float, default=0.15,
                           help="mean input spike events per element per timestep (the "
                                "trace's in_value_mean; for 0/1 spikes also the non-zero "
                                "fraction) (default 0.15)")
    synthetic.add_argument("--weight-density", type=finite_float, default=1.0,
                           help="fraction of non-zero weights (default 1.0)")
    synthetic.add_argument("--keep-ratio", type=finite_float, default=1.0,
                           help="token keep ratio per selector (default 1.0)")


def run(args: argparse.Namespace) -> int:
    if not args.synthetic:
        _real_stats_samples(args.real_stats_samples)  # reject bad input before loading
    runtime = runtime_of(args)  # a bad --device fails here, synthetic or not
    trace = _synthetic(args) if args.synthetic else _recorded(args, runtime)
    path = trace.save(args.out)
    layers = trace.layers
    accuracy = trace.manifest["accuracy"]
    print(f"trace of {trace.manifest['preset']}: {len(layers)} layers, "
          f"{layers.dense_macs.sum() / 1e9:.4f} dense GFLOPs, "
          f"{layers.effective_ops.sum() / 1e9:.4f} G effective ops per sample"
          + ("" if accuracy is None else f", accuracy {accuracy:.2%}") + f" -> {path}")
    return 0


def _synthetic(args: argparse.Namespace):
    import torch

    from sparsespikformer.model import create_model, get_preset_config
    from sparsespikformer.model.tracing.record import layer_shapes
    from sparsespikformer.simulator.synthetic import synthetic_trace

    if args.preset is None:
        raise InputError("--synthetic needs --preset")
    config = get_preset_config(args.preset)
    with torch.device("meta"):
        model = create_model(args.preset)
    shapes = layer_shapes(model, (config.in_channels, config.img_size, config.img_size))
    return synthetic_trace(shapes, firing_rate=args.firing_rate,
                           weight_density=args.weight_density, keep_ratio=args.keep_ratio,
                           timesteps=config.timesteps, seed=args.seed, preset=args.preset,
                           input_shape=(config.in_channels, config.img_size, config.img_size),
                           model_config=config.to_dict())


def _recorded(args: argparse.Namespace, runtime):
    import torch

    from sparsespikformer.analysis.cli.model_loading import load_model_for_data
    from sparsespikformer.model.tracing.record import record_trace

    torch.manual_seed(args.seed)
    loaded, dataset = load_model_for_data(preset=args.preset, checkpoint=args.checkpoint,
                                          data=args.data, split=args.split,
                                          img_size=args.img_size, ema=args.ema)
    if args.checkpoint is None:
        log.warning("no --checkpoint: tracing an untrained %s", loaded.preset)
    loaded.model.to(runtime.torch_device())
    count = min(args.samples, len(dataset))
    images, labels = dataset.get_batch(torch.arange(count))
    return record_trace(loaded.model, images, labels, batch_size=args.batch_size,
                        preset=loaded.preset, dataset=loaded.data, seed=args.seed,
                        real_stats_samples=_real_stats_samples(args.real_stats_samples),
                        progress=progress_wanted(args), amp=runtime.amp)


def _real_stats_samples(text: str) -> int | None:
    if text == "all":
        return None
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"--real-stats-samples must be a positive integer or 'all', "
                         f"got {text!r}")
    return int(text)
