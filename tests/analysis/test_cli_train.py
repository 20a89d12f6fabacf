"""`sparsespikformer train` and `eval`, in-process and (for the exit code) as a subprocess."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from cli_helpers import assert_one_line_error, with_paths

from sparsespikformer.analysis.cli import main
from sparsespikformer.model.training.checkpoint import load_checkpoint

# The digits preset cut to 1 block, 16 wide, T=1: the CLI path end to end in seconds.
_TINY = ["--preset", "spikformer_4_64_digits", "--depth", "1", "--embed-dim", "16",
         "--timesteps", "1"]
_TINY_EVAL = ["--preset", "spikformer_4_64_digits"]


def _write_frames(root, count: int, steps: int = 2, side: int = 16, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        np.savez(root / f"{split}.npz",
                 frames=rng.integers(0, 3, size=(count, steps, 2, side, side), dtype=np.uint8),
                 labels=np.arange(count) % 3)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(one_torch_thread, tmp_path_factory):
    """One epoch of the digits preset on a small batch budget, via the CLI."""
    out = tmp_path_factory.mktemp("run")
    code = main(["train", *_TINY, "--data", "digits", "--epochs", "1", "--batch-size", "128",
                 "--out", str(out), "--no-progress", "--seed", "3"])
    assert code == 0
    return out


def test_train_writes_checkpoint_and_history(trained, capsys):
    history = pd.read_csv(trained / "history.csv")
    assert list(history["epoch"]) == [1]
    state = load_checkpoint(trained / "checkpoint.pt")
    assert state["epoch"] == 1
    assert state["metadata"]["preset"] == "spikformer_4_64_digits"
    assert state["config"]["batch_size"] == 128 and state["config"]["seed"] == 3


def test_train_again_resumes_and_does_no_more_work(trained, capsys):
    before = (trained / "checkpoint.pt").stat().st_mtime_ns
    assert main(["train", *_TINY, "--epochs", "1", "--batch-size", "128", "--seed", "3",
                 "--out", str(trained), "--no-progress"]) == 0
    assert (trained / "checkpoint.pt").stat().st_mtime_ns == before
    history = pd.read_csv(trained / "history.csv")
    assert f"{history['test_accuracy'].iloc[-1]:.2%}" in capsys.readouterr().out


def test_eval_reports_the_training_accuracy(trained, capsys):
    history = pd.read_csv(trained / "history.csv")
    assert main(["eval", "--checkpoint", str(trained / "checkpoint.pt"), "--data", "digits",
                 "--split", "test", *_TINY_EVAL]) == 0
    out = capsys.readouterr().out
    assert "360 samples" in out
    assert f"accuracy {history['test_accuracy'].iloc[-1]:.2%}" in out


def test_eval_takes_preset_from_checkpoint(trained, capsys):
    assert main(["eval", "--checkpoint", str(trained / "checkpoint.pt")]) == 0
    assert "spikformer_4_64_digits on digits test" in capsys.readouterr().out


def test_eval_with_wrong_preset_is_a_one_line_error(trained, capsys):
    code = main(["eval", "--checkpoint", str(trained / "checkpoint.pt"),
                 "--preset", "spikformer_4_384_cifar10", "--data", "digits", "--img-size", "32"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "weights do not fit" in err and "\n" not in err


def test_train_on_frames_fits_classes_channels_and_timesteps(tmp_path, capsys):
    _write_frames(tmp_path / "frames", count=8)
    code = main(["train", *_TINY, "--data", f"frames:{tmp_path / 'frames'}", "--epochs", "1",
                 "--batch-size", "4", "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 0
    state = load_checkpoint(tmp_path / "out" / "checkpoint.pt")
    assert state["metadata"]["overrides"] == {"depth": 1, "embed_dim": 16, "num_classes": 3,
                                              "in_channels": 2, "timesteps": 2}
    assert state["model"]["head.weight"].shape == (3, 16)


@pytest.mark.parametrize("argv, message", [
    (["train", "--data", "mnist", "--out", "X"], "unknown data spec 'mnist'"),
    (["train", "--data", "cifar10:/no/such/dir", "--out", "X"], "/no/such/dir"),
    (["train", "--preset", "no_such_model", "--out", "X"], "no_such_model"),
    (["train", "--epochs", "0", "--out", "X"], "argument --epochs: expected a positive integer"),
    (["eval", "--checkpoint", "/no/such.pt"], "/no/such.pt"),
    # non-finite floats trained to NaN (nan passes no range check; inf overflows)
    (["train", "--weight-decay", "nan", "--out", "X"], "argument --weight-decay: expected a"),
    (["train", "--weight-decay", "inf", "--out", "X"], "argument --weight-decay: expected a"),
    (["train", "--lr", "inf", "--out", "X"], "argument --lr: expected a finite"),
    (["train", "--lr", "nan", "--out", "X"], "argument --lr: expected a finite"),
    (["train", "--mixup", "nan", "--out", "X"], "argument --mixup: expected a finite"),
    (["train", "--mixup", "inf", "--out", "X"], "argument --mixup: expected a finite"),
    (["train", "--img-size", "0", "--out", "X"], "argument --img-size: expected a positive"),
    (["eval", "--img-size", "0", "--checkpoint", "X"], "argument --img-size: expected a positive"),
    (["train", "--seed", "-1", "--out", "X"], "argument --seed: expected an integer in 0.."),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    assert_one_line_error(with_paths(argv, tmp_path), message, capsys)


def test_subprocess_exit_code_for_bad_data(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sparsespikformer.analysis.cli", "train", "--data", "nope:1",
         "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "unknown data spec 'nope:1'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_trained_weights_are_deterministic(trained, tmp_path):
    again = tmp_path / "again"
    assert main(["train", *_TINY, "--epochs", "1", "--batch-size", "128", "--seed", "3",
                 "--out", str(again), "--no-progress"]) == 0
    first = load_checkpoint(trained / "checkpoint.pt")["model"]
    second = load_checkpoint(again / "checkpoint.pt")["model"]
    assert all(torch.equal(first[k], second[k]) for k in first)


def _bad_checkpoints(folder) -> dict:
    """A text file, and a training checkpoint without its weights."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "text.pt").write_text("hello\n")            # torch.load raised KeyError: 101
    torch.save({"format": "sparsespikformer-train", "version": 1}, folder / "no_model.pt")
    return {"text.pt": "text.pt: not a readable checkpoint",
            "no_model.pt": "no_model.pt: missing key(s) 'model'"}


@pytest.mark.parametrize("name", ["text.pt", "no_model.pt"])
@pytest.mark.parametrize("command", ["eval", "trace", "teacher"])
def test_bad_checkpoint_is_one_line_and_exit_2(command, name, tmp_path, capsys):
    message = _bad_checkpoints(tmp_path)[name]
    checkpoint = str(tmp_path / name)
    argv = {"eval": ["eval", "--checkpoint", checkpoint, *_TINY_EVAL],
            "trace": ["trace", "--checkpoint", checkpoint, *_TINY_EVAL,
                      "--out", str(tmp_path / "t")],
            "teacher": ["train", "--preset", "sparsespikformer_4_64_digits", "--teacher",
                        checkpoint, "--out", str(tmp_path / "o"), "--no-progress"]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("name", ["text.pt", "no_model.pt"])
def test_resume_from_bad_checkpoint_is_one_line_and_exit_2(name, tmp_path, capsys):
    message = _bad_checkpoints(tmp_path)[name]
    out = tmp_path / "run"
    out.mkdir()
    (tmp_path / name).rename(out / "checkpoint.pt")
    assert main(["train", *_TINY, "--epochs", "1", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{out}/" + message.replace(name, "checkpoint.pt") in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("metadata, message", [
    ({"preset": "spikformer_4_64_digits", "img_size": 0}, "'metadata.img_size' is 0"),
    ({"preset": "spikformer_4_64_digits", "overrides": [1]}, "'metadata.overrides' is [1]"),
    ({"preset": "spikformer_4_64_digits", "overrides": {"bogus": 1}},
     "'metadata.overrides' do not fit"),
    ("x", "'metadata' is a str"),
])
def test_eval_checks_the_checkpoint_metadata(metadata, message, tmp_path, capsys):
    torch.save({"format": "sparsespikformer-train", "version": 1, "model": {},
                "metadata": metadata}, tmp_path / "meta.pt")
    assert main(["eval", "--checkpoint", str(tmp_path / "meta.pt")]) == 2
    err = capsys.readouterr().err
    assert f"meta.pt: {message}" in err and err.count("\n") == 1
