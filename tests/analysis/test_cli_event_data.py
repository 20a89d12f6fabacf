"""`train --data frames:PATH` on the reference DVS pipeline's per-sample frame folders, and
`--data events:PATH?...` on raw recordings: the model fits the data's T, channels and classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparsespikformer.analysis.cli import main
from sparsespikformer.model.training.checkpoint import load_checkpoint

_TINY = ["--preset", "spikformer_4_64_digits", "--depth", "1", "--embed-dim", "16",
         "--epochs", "1", "--batch-size", "4", "--no-progress", "--threads", "1"]


def _frame_tree(root, steps=3, side=16):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in ("a", "b", "c"):
            (root / split / name).mkdir(parents=True)
            for i in range(3):
                frames = rng.integers(0, 3, (steps, 2, side, side)).astype(np.float64)
                np.savez_compressed(root / split / name / f"{i}.npz", frames=frames)


def _event_tree(root, side=16):
    rng = np.random.default_rng(1)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(10):      # a flat class tree: 9 train, 1 test per class
            n = 300
            np.savez(root / name / f"{i}.npz", t=np.sort(rng.integers(0, 10**6, n)),
                     x=rng.integers(0, side, n), y=rng.integers(0, side, n),
                     p=rng.integers(0, 2, n))


@pytest.mark.parametrize("layout", ["frames", "events"])
def test_train_fits_the_event_data(tmp_path, layout, capsys):
    if layout == "frames":
        _frame_tree(tmp_path / "data")
        spec, expected = f"frames:{tmp_path / 'data'}", {"num_classes": 3, "timesteps": 3}
    else:
        _event_tree(tmp_path / "data")
        spec = f"events:{tmp_path / 'data'}?frames=4&size=16x16"
        expected = {"num_classes": 2, "timesteps": 4}
    assert main(["train", *_TINY, "--data", spec, "--out", str(tmp_path / "out")]) == 0
    state = load_checkpoint(tmp_path / "out" / "checkpoint.pt")
    overrides = state["metadata"]["overrides"]
    assert overrides["in_channels"] == 2
    assert {k: overrides[k] for k in expected} == expected
    assert state["model"]["head.weight"].shape == (expected["num_classes"], 16)
    assert torch.isfinite(state["model"]["head.weight"]).all()
