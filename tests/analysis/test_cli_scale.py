"""The scale flags on the CLI: --device, --amp, --recipe, --workers, and torchrun."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import torch
from cli_helpers import assert_one_line_error, exit_code, with_paths

from sparsespikformer.analysis.cli import main

# The digits preset cut to 1 block, 16 wide, T=1 (as test_cli_train.py)
_TINY = ["--preset", "spikformer_4_64_digits", "--depth", "1", "--embed-dim", "16",
         "--timesteps", "1"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("argv, message", [
    (["train", "--device", "tpu", "--out", "X"], "--device 'tpu': expected auto | cpu"),
    (["train", "--amp", "fp8", "--out", "X"], "argument --amp: invalid choice: 'fp8'"),
    (["train", "--recipe", "nope", "--out", "X"], "argument --recipe: invalid choice"),
    (["prune", "--workers", "-1", "--out", "X"], "argument --workers: expected a non-neg"),
    (["eval", "--device", "cuda:x", "--checkpoint", "X"], "expected cuda or cuda:N"),
])
def test_bad_scale_flags_are_one_line_and_exit_2(argv, message, tmp_path, capsys):
    argv = with_paths(argv, tmp_path)
    if argv[0] == "eval":
        torch.save({"metadata": {"preset": "spikformer_4_64_digits"}}, argv[-1])
    assert_one_line_error(argv, message, capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("command", [
    ["train", *_TINY], ["demo"],
    ["trace", "--preset", "spikformer_4_64_digits", "--synthetic"]])
def test_cuda_on_a_cpu_machine_is_a_one_line_error_before_any_work(command, tmp_path, capsys):
    out = tmp_path / "out"
    assert exit_code([*command, "--device", "cuda", "--out", str(out)]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert not out.exists()  # no stage started, nothing half-written


@pytest.fixture(scope="module")
def trained_bf16(tmp_path_factory):
    """One epoch of a tiny preset with the digits recipe, on the CPU, in bf16."""
    out = tmp_path_factory.mktemp("bf16")
    code = main(["train", *_TINY, "--data", "digits", "--recipe", "digits", "--epochs", "1",
                 "--batch-size", "128", "--device", "cpu", "--amp", "bf16", "--out", str(out),
                 "--no-progress"])
    assert code == 0
    return out


def test_train_records_device_and_precision(trained_bf16):
    history = pd.read_csv(trained_bf16 / "history.csv")
    assert history[["world_size", "device_type", "amp"]].values.tolist() == [[1, "cpu", "bf16"]]
    state = torch.load(trained_bf16 / "checkpoint.pt", weights_only=True)
    assert state["runtime"] == {"world_size": 1, "device_type": "cpu", "amp": "bf16"}


def test_eval_and_trace_take_device_and_precision(trained_bf16, tmp_path, capsys):
    checkpoint = str(trained_bf16 / "checkpoint.pt")
    assert main(["eval", "--checkpoint", checkpoint, "--device", "cpu", "--amp", "bf16"]) == 0
    assert "accuracy" in capsys.readouterr().out
    out = tmp_path / "trace"
    assert main(["trace", "--checkpoint", checkpoint, "--samples", "16", "--device", "cpu",
                 "--amp", "bf16", "--out", str(out)]) == 0
    assert json.loads((out / "manifest.json").read_text())["amp"] == "bf16"


@pytest.mark.parametrize("flags, expected", [
    ([], (15, 0.25, 20, 64, 20)),
    (["--rewind-epoch", "0", "--rounds", "2", "--epochs", "3"], (2, 0.25, 0, 64, 3)),
    (["--rate", "0.5", "--batch-size", "32"], (15, 0.5, 20, 32, 20)),
])
def test_prune_takes_the_recipe_lottery_settings_and_flags_win(flags, expected):
    """sparsespikformer_cifar10: 15 rounds of 25 %, rewinding to epoch 20, batch 64; a flag
    wins, and a run shorter than the 20 warm-up epochs warms up over all of it."""
    from sparsespikformer.analysis.cli import build_parser
    from sparsespikformer.analysis.cli.commands.prune import settings_of

    args = build_parser("prune").parse_args(
        ["prune", "--recipe", "sparsespikformer_cifar10", "--out", "X", *flags])
    train_config, lottery = settings_of(args)
    assert (lottery.rounds, lottery.rate, lottery.rewind_epoch, train_config.batch_size,
            train_config.warmup_epochs) == expected
    assert train_config.augment.randaugment_ops == 1
    _, plain = settings_of(build_parser("prune").parse_args(["prune", "--out", "X"]))
    assert (plain.rounds, plain.rate, plain.rewind_epoch) == (9, 0.25, 1)


def test_train_with_a_published_recipe_runs_its_augmentation(tmp_path):
    out = tmp_path / "recipe"
    assert main(["train", *_TINY, "--data", "digits", "--recipe", "spikformer_cifar10",
                 "--epochs", "1", "--batch-size", "128", "--device", "cpu", "--out", str(out),
                 "--no-progress"]) == 0
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["config"]["augment"] == {"crop_padding": 4, "randaugment_ops": 1,
                                          "randaugment_magnitude": 9, "erase_prob": 0.25}
    assert state["config"]["mixup_alpha"] == 0.5 and state["config"]["warmup_epochs"] == 1


@pytest.mark.skipif(shutil.which("torchrun", path=os.path.dirname(sys.executable)) is None,
                    reason="torchrun is not installed next to this Python")
def test_torchrun_two_processes_train_through_the_module_entry_point(tmp_path):
    """`torchrun --nproc_per_node 2 -m sparsespikformer.analysis.cli train ...` on the CPU
    (gloo): one run, written once, by rank 0."""
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    out = tmp_path / "ddp"
    result = subprocess.run(
        [torchrun, "--nproc_per_node", "2", "-m", "sparsespikformer.analysis.cli", "train",
         *_TINY, "--data", "digits", "--epochs", "1", "--batch-size", "128", "--out", str(out),
         "--no-progress", "--device", "cpu"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("test accuracy") == 1                 # printed by rank 0 only
    history = pd.read_csv(out / "history.csv")
    assert history["world_size"].tolist() == [2]
