"""`sparsespikformer prune` and selector training from the CLI, on a tiny model and data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sparsespikformer.analysis.cli import main
from sparsespikformer.model import list_models, register_preset
from sparsespikformer.model.config import SpikformerConfig
from sparsespikformer.model.masks import load_masks
from sparsespikformer.model.selector_presets import SparseSpikformerConfig, build_sparse_spikformer

DENSE, SPARSE = "spikformer_clitest_tiny", "sparsespikformer_clitest_tiny"
TINY = dict(form="cifar", img_size=8, in_channels=1, num_classes=4, embed_dim=16, num_heads=2,
            depth=2, timesteps=2, sps_pool_after=(3,))                     # 16 tokens
TRAIN = ["--epochs", "1", "--batch-size", "16", "--no-progress"]


@pytest.fixture(scope="module", autouse=True)
def tiny_presets():
    if DENSE not in list_models():
        register_preset(DENSE, lambda: SpikformerConfig(**TINY))
        register_preset(SPARSE, lambda: SparseSpikformerConfig(**TINY, selector_blocks=(1,)),
                        model_builder=build_sparse_spikformer,
                        extra_overrides=("keep_ratio", "scorer"))


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    """32 training and 16 test samples of (T=2, C=1, 8, 8) frames, 4 classes."""
    root = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    for split, count in (("train", 32), ("test", 16)):
        labels = np.arange(count) % 4
        frames = (rng.random((count, 2, 1, 8, 8)) < 0.2).astype(np.uint8)
        for i, label in enumerate(labels):
            frames[i, :, 0, 2 * label:2 * label + 2, :] = 1         # class = a bright band
        np.savez(root / f"{split}.npz", frames=frames, labels=labels)
    return f"frames:{root}"


def _sparsity_ladder(rounds: int) -> list[float]:
    return [1 - 0.75 ** k for k in range(rounds + 1)]


def test_prune_writes_rounds_and_resumes(tmp_path, frames_dir, capsys):
    out = tmp_path / "lth"
    args = ["prune", "--preset", DENSE, "--data", frames_dir, "--rounds", "2",
            "--rewind-epoch", "1", "--out", str(out), *TRAIN]
    assert main(args) == 0
    table = pd.read_csv(out / "rounds.csv")
    assert list(table["round"]) == [0, 1, 2]
    assert table["weight_sparsity"].tolist() == pytest.approx(_sparsity_ladder(2), abs=2e-4)
    assert "rounds.csv" in capsys.readouterr().out
    for k in (0, 1, 2):
        assert (out / f"round_{k:02d}" / "mask.pt").is_file()
    # one more round: the first three are reused, not retrained
    stamp = (out / "round_01" / "weights.pt").stat().st_mtime_ns
    assert main([*args[:6], "3", *args[7:]]) == 0
    assert (out / "round_01" / "weights.pt").stat().st_mtime_ns == stamp
    table = pd.read_csv(out / "rounds.csv")
    assert table["weight_sparsity"].tolist() == pytest.approx(_sparsity_ladder(3), abs=3e-4)
    weights = torch.load(out / "round_03" / "weights.pt", weights_only=True)
    for name, mask in load_masks(out / "round_03" / "mask.pt").items():
        assert bool((weights[name][~mask] == 0).all())


def test_prune_baseline_and_layer_scope(tmp_path, frames_dir):
    out = tmp_path / "lth"
    assert main(["prune", "--preset", DENSE, "--data", frames_dir, "--rounds", "1",
                 "--baseline", "reinit", "--scope", "layer", "--out", str(out), *TRAIN]) == 0
    reinit = pd.read_csv(out / "baseline_reinit" / "rounds.csv")
    assert list(reinit["baseline"]) == ["reinit", "reinit"]
    assert (out / "round_01" / "result.json").is_file()          # the IMP ticket came first


@pytest.fixture(scope="module")
def teacher_checkpoint(tmp_path_factory, frames_dir):
    out = tmp_path_factory.mktemp("teacher")
    assert main(["train", "--preset", DENSE, "--data", frames_dir, "--out", str(out),
                 *TRAIN]) == 0
    return str(out / "checkpoint.pt")


@pytest.mark.parametrize("scorer", ["learned", "firing_rate", "random"])
def test_each_scorer_trains_from_a_teacher_and_runs_from_the_cli(tmp_path, frames_dir, scorer,
                                                                 teacher_checkpoint, capsys):
    student = tmp_path / scorer
    assert main(["train", "--preset", SPARSE, "--data", frames_dir, "--scorer", scorer,
                 "--keep-ratio", "0.5", "--teacher", teacher_checkpoint,
                 "--out", str(student), *TRAIN]) == 0
    assert "test accuracy" in capsys.readouterr().out
    state = torch.load(student / "checkpoint.pt", weights_only=True)
    has_mlp = any(k.startswith("token_selectors.1.mlp") for k in state["model"])
    assert has_mlp == (scorer == "learned")
    teacher = torch.load(teacher_checkpoint, weights_only=True)["model"]
    assert set(teacher) == {k for k in state["model"] if not k.startswith("token_selectors.")}


def test_pruning_composes_with_token_selection(tmp_path, frames_dir, teacher_checkpoint):
    out = tmp_path / "lth_selected"
    assert main(["prune", "--preset", SPARSE, "--data", frames_dir, "--scorer", "learned",
                 "--keep-ratio", "0.5", "--teacher", teacher_checkpoint,
                 "--rounds", "1", "--out", str(out), *TRAIN]) == 0
    masks = load_masks(out / "round_01" / "mask.pt")
    assert any(name.startswith("token_selectors.1.mlp") for name in masks)
    table = pd.read_csv(out / "rounds.csv")
    assert table["weight_sparsity"].tolist() == pytest.approx(_sparsity_ladder(1), abs=2e-4)


@pytest.mark.parametrize("extra, message", [
    (["--rate", "1.5"], "rate"),
    (["--keep-ratio", "0.5"], "sparsespikformer_"),
    (["--teacher", "missing.pt", "--preset", SPARSE], "missing.pt"),
    (["--rewind-epoch", "3"], "rewind_epoch"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, frames_dir, capsys, extra, message):
    args = ["prune", "--preset", DENSE, "--data", frames_dir, "--rounds", "1",
            "--out", str(tmp_path / "x"), *TRAIN, *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
