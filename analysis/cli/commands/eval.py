"""`sparsespikformer eval`: accuracy of a checkpoint on a data split."""

from __future__ import annotations

import argparse

from sparsespikformer.analysis.cli.arg_groups import add_runtime, runtime_of
from sparsespikformer.analysis.cli.arg_types import positive_int

HELP = "evaluate a checkpoint: top-1 accuracy and loss on a data split"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True,
                        help="checkpoint.pt from `train`, a reference / timm checkpoint "
                             "(model_best.pth.tar), or a state dict, wrapped or not")
    parser.add_argument("--ema", action="store_true",
                        help="load the checkpoint's EMA weights (timm state_dict_ema, ...)")
    parser.add_argument("--preset", help="model preset (default: the one the checkpoint "
                                         "was trained as)")
    parser.add_argument("--data", help="data spec (default: the training data, else digits)")
    parser.add_argument("--split", choices=("train", "test"), default="test")
    parser.add_argument("--img-size", type=positive_int, help="resize inputs (default: as trained)")
    parser.add_argument("--batch-size", type=positive_int, default=256)
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads")
    add_runtime(parser)


def run(args: argparse.Namespace) -> int:
    import torch

    from sparsespikformer.analysis.cli.model_loading import load_model_for_data
    from sparsespikformer.model.training.loop import evaluate

    runtime = runtime_of(args)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    loaded, dataset = load_model_for_data(preset=args.preset, checkpoint=args.checkpoint,
                                          data=args.data, split=args.split,
                                          img_size=args.img_size, ema=args.ema)
    scores = evaluate(loaded.model.to(runtime.torch_device()), dataset,
                      batch_size=args.batch_size, amp=runtime.amp)
    print(f"{loaded.preset} on {dataset.info.name} {args.split} ({len(dataset)} samples): "
          f"accuracy {scores['accuracy']:.2%}, loss {scores['loss']:.4f}")
    return 0
