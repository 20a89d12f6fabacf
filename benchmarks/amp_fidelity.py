"""What half-precision autocast changes on a trained model: accuracy, predictions, spikes.

For float32 and each `--amp` mode, on the test split of the checkpoint's data: top-1
accuracy and how many predictions differ from float32's; the spike flip rate of every LIF
layer (the fraction of its output elements that differ from the float32 run on the same
images, flips of earlier layers included); and the largest change of a traced firing rate
(`out_nonzero_fraction` of a `lif` row) over `--trace-samples` images. The membrane update
and the spike products run in float32 in every mode (model/nn/lif.py, attention.py).

    python benchmarks/amp_fidelity.py --checkpoint /tmp/dig/checkpoint.pt [--amp bf16 fp16]
        [--preset NAME]   # a bare state dict, e.g. demo_run/lth/round_00/weights.pt
"""

from __future__ import annotations

import argparse

import torch

from sparsespikformer.analysis.cli.model_loading import load_model_for_data
from sparsespikformer.model.nn.lif import LIF
from sparsespikformer.model.tracing.record import record_trace
from sparsespikformer.model.training.devices import autocast


@torch.no_grad()
def spikes_and_logits(model, images: torch.Tensor, amp: str, batch: int):
    """Every LIF's spikes (name -> (S, ...) bool) and the logits, in `amp` precision."""
    spikes: dict[str, list[torch.Tensor]] = {}
    hooks = [module.register_forward_hook(
        lambda mod, inputs, out, name=name: spikes.setdefault(name, []).append(
            out.transpose(0, 1).bool()))
        for name, module in model.named_modules() if isinstance(module, LIF)]
    logits = []
    try:
        for chunk in images.split(batch):
            with autocast(torch.device("cpu"), amp):
                logits.append(model(chunk).float())
    finally:
        for hook in hooks:
            hook.remove()
    return {name: torch.cat(parts) for name, parts in spikes.items()}, torch.cat(logits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--preset", help="for a bare state dict (e.g. an LTH round's weights)")
    parser.add_argument("--amp", nargs="+", default=["bf16", "fp16"])
    parser.add_argument("--batch", type=int, default=120)
    parser.add_argument("--trace-samples", type=int, default=256)
    args = parser.parse_args()

    loaded, dataset = load_model_for_data(preset=args.preset, checkpoint=args.checkpoint, data=None,
                                          split="test")
    model = loaded.model.eval()
    images, labels = dataset.get_batch(torch.arange(len(dataset)))
    reference, ref_logits = spikes_and_logits(model, images, "off", args.batch)
    ref_pred = ref_logits.argmax(dim=1)
    traced = images[:args.trace_samples], labels[:args.trace_samples]
    ref_trace = record_trace(model, *traced)
    lif_rows = ref_trace.layers["kind"] == "lif"
    print(f"{loaded.preset} on {dataset.info.name} test ({len(dataset)} images): float32 "
          f"accuracy {(ref_pred == labels).float().mean():.4f}")
    print("| amp | accuracy | change (images) | predictions changed | spikes flipped (all "
          "LIF outputs) | worst LIF layer | max abs change of a traced firing rate |")
    print("|---|---|---|---|---|---|---|")
    for amp in args.amp:
        spikes, logits = spikes_and_logits(model, images, amp, args.batch)
        pred = logits.argmax(dim=1)
        flipped = {name: float((spikes[name] != reference[name]).float().mean())
                   for name in reference}
        total = sum(int((spikes[n] != reference[n]).sum()) for n in reference)
        elements = sum(reference[n].numel() for n in reference)
        worst = max(flipped, key=flipped.get)
        trace = record_trace(model, *traced, amp=amp)
        rates = (trace.layers.loc[lif_rows, "out_nonzero_fraction"].to_numpy()
                 - ref_trace.layers.loc[lif_rows, "out_nonzero_fraction"].to_numpy())
        change = int((pred == labels).sum() - (ref_pred == labels).sum())
        print(f"| {amp} | {(pred == labels).float().mean():.4f} | {change:+d} | "
              f"{int((pred != ref_pred).sum())} | {total / elements:.2e} | {worst} "
              f"{flipped[worst]:.2e} | {abs(rates).max():.2e} |")


if __name__ == "__main__":
    main()
