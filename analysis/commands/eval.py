"""`sparsespikformer eval`: accuracy of a checkpoint on a data split."""

from __future__ import annotations

import argparse

HELP = "evaluate a checkpoint: top-1 accuracy and loss on a data split"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True,
                        help="checkpoint.pt from `train`, or a bare state dict")
    parser.add_argument("--preset", help="model preset (default: the one the checkpoint "
                                         "was trained as)")
    parser.add_argument("--data", help="data spec (default: the training data, else digits)")
    parser.add_argument("--split", choices=("train", "test"), default="test")
    parser.add_argument("--img-size", type=int, help="resize inputs (default: as trained)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, help="torch CPU threads")


def run(args: argparse.Namespace) -> int:
    from sparsespikformer.model import create_model, get_preset_config
    from sparsespikformer.model.checkpoint import apply_model_weights, load_checkpoint
    from sparsespikformer.model.datasets import load_dataset
    from sparsespikformer.model.recipes import model_overrides_for
    from sparsespikformer.model.training import evaluate

    import torch

    if args.batch_size <= 0:
        raise ValueError(f"--batch-size must be positive, got {args.batch_size}")
    if args.threads is not None:
        if args.threads <= 0:
            raise ValueError(f"--threads must be positive, got {args.threads}")
        torch.set_num_threads(args.threads)
    state = load_checkpoint(args.checkpoint)
    metadata = state.get("metadata", {}) if isinstance(state.get("metadata"), dict) else {}
    preset = args.preset or metadata.get("preset")
    if preset is None:
        raise ValueError(f"{args.checkpoint}: no preset recorded; pass --preset")
    data = args.data or metadata.get("data", "digits")
    # The architecture the checkpoint was trained with, if it was trained as this preset.
    trained_as = dict(metadata.get("overrides", {})) if metadata.get("preset") == preset else {}
    preset_config = get_preset_config(preset, **trained_as)
    img_size = args.img_size or preset_config.img_size
    dataset = load_dataset(data, args.split, img_size=img_size)
    overrides = {**trained_as, **model_overrides_for(preset_config, dataset.info)}
    model = create_model(preset, **overrides)
    apply_model_weights(model, state, args.checkpoint)
    scores = evaluate(model, dataset, batch_size=args.batch_size)
    print(f"{preset} on {dataset.info.name} {args.split} ({len(dataset)} samples): "
          f"accuracy {scores['accuracy']:.2%}, loss {scores['loss']:.4f}")
    return 0
