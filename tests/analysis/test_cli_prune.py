"""`sparsespikformer prune` and selector training from the CLI, on a tiny model and data."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from cli_helpers import exit_code

from sparsespikformer.analysis.cli import main
from sparsespikformer.model import list_models, register_preset
from sparsespikformer.model.nn.config import SpikformerConfig
from sparsespikformer.model.pruning.masks import load_masks
from sparsespikformer.model.sparse_presets import SparseSpikformerConfig, build_sparse_spikformer

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
    (["--lr", "inf"], "argument --lr: expected a finite number"),
    (["--rate", "nan"], "argument --rate: expected a finite number"),
    (["--img-size", "0"], "argument --img-size: expected a positive integer"),
    (["--seed", "-1"], "argument --seed: expected an integer"),
    (["--teacher", "TEXT", "--preset", SPARSE], "text.pt: not a readable checkpoint"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, frames_dir, capsys, extra, message):
    (tmp_path / "text.pt").write_text("hello\n")
    extra = [str(tmp_path / "text.pt") if a == "TEXT" else a for a in extra]
    args = ["prune", "--preset", DENSE, "--data", frames_dir, "--rounds", "1",
            "--out", str(tmp_path / "x"), *TRAIN, *extra]
    assert exit_code(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- resuming a damaged or
# different run: every problem is one line naming the file or the changed settings


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, frames_dir):
    """A finished 1-round IMP run, copied by each test before it damages it."""
    out = tmp_path_factory.mktemp("finished") / "lth"
    assert main(_prune_args(out, frames_dir)) == 0
    return out


def _prune_args(out, frames_dir, *extra) -> list[str]:
    return ["prune", "--preset", DENSE, "--data", frames_dir, "--rounds", "1",
            "--out", str(out), *TRAIN, *extra]


def _resume_error(finished_run, tmp_path, frames_dir, capsys, damage, *extra) -> tuple:
    out = tmp_path / "lth"
    shutil.copytree(finished_run, out)
    damage(out)
    code = exit_code(_prune_args(out, frames_dir, *extra))
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return code, err, out


def _other_model_weights(out):
    # a state dict of another model (the tiny preset one block deeper): wrong keys and shapes
    shutil.rmtree(out / "round_01")
    torch.save({"head.weight": torch.zeros(7, 3)}, out / "round_00" / "weights.pt")


def _wrong_shapes(out):
    shutil.rmtree(out / "round_01")
    weights = torch.load(out / "round_00" / "weights.pt", weights_only=True)
    weights["head.weight"] = torch.zeros(5, 16)
    torch.save(weights, out / "round_00" / "weights.pt")


def _text_mask(out):
    shutil.rmtree(out / "round_01")
    (out / "round_00" / "mask.pt").write_text("hello\n")


@pytest.mark.parametrize("damage, message", [
    (_other_model_weights, "round_00/weights.pt: weights do not fit the model"),
    (_wrong_shapes, "round_00/weights.pt: weights do not fit the model"),
    (_text_mask, "round_00/mask.pt: not a readable checkpoint"),
    (lambda out: (out / "round_01" / "result.json").write_text("[1]"),
     "round_01/result.json: expected a JSON object, got list"),
    (lambda out: (out / "round_01" / "result.json").write_text("{"),
     "round_01/result.json: not valid JSON"),
    (lambda out: (out / "round_01" / "result.json").write_text('{"round": 1}'),
     "round_01/result.json: missing key(s) 'weight_sparsity'"),
    (lambda out: (out / "settings.json").write_text("{"), "settings.json: not valid JSON"),
], ids=["other_model", "wrong_shapes", "text_mask", "result_list", "result_truncated",
        "result_keys", "settings_truncated"])
def test_resume_with_damaged_files_names_the_file(finished_run, tmp_path, frames_dir, capsys,
                                                  damage, message):
    code, err, out = _resume_error(finished_run, tmp_path, frames_dir, capsys, damage)
    assert code == 2 and f"{out}/{message}" in err


@pytest.mark.parametrize("extra, change", [
    (["--rate", "0.5"], "lottery.rate: 0.25 -> 0.5"),
    (["--scope", "layer"], "lottery.scope: 'global' -> 'layer'"),
    (["--rewind-epoch", "0"], "lottery.rewind_epoch: 1 -> 0"),
    (["--epochs", "2"], "train.epochs: 1 -> 2"),
    (["--lr", "0.02"], "train.lr: 0.0005 -> 0.02"),
    (["--batch-size", "8"], "train.batch_size: 16 -> 8"),
    (["--seed", "1"], "lottery.seed: 0 -> 1"),
    (["--img-size", "4"], "metadata.img_size: 8 -> 4"),
])
def test_resume_with_other_settings_is_an_error(finished_run, tmp_path, frames_dir, capsys,
                                                extra, change):
    code, err, out = _resume_error(finished_run, tmp_path, frames_dir, capsys,
                                   lambda out: None, *extra)
    assert code == 2
    assert f"{out} was written with different pruning settings (" in err and change in err


def test_resume_with_other_threads_is_allowed(finished_run, tmp_path, frames_dir):
    out = tmp_path / "lth"
    shutil.copytree(finished_run, out)
    assert main(_prune_args(out, frames_dir, "--threads", "1")) == 0
    assert json.loads((out / "settings.json").read_text())["lottery"]["rate"] == 0.25
