"""`eval` and `trace --checkpoint` on the checkpoints researchers bring (field case 01).

The four layouts of field-cases/01-reference-timm-checkpoint-cli/make_inputs.py (a timm
CheckpointSaver file with an argparse Namespace, the same without it, a DataParallel state
dict, a plain reference state dict, all with the reference's unused norm1/norm2), written for
the small digits preset so that the test runs in seconds. Oracle: the accuracy and loss of
the in-memory model the files were written from.
"""

from __future__ import annotations

import argparse
from collections import OrderedDict

import pytest
import torch
from cli_helpers import exit_code

from sparsespikformer.analysis.cli import main
from sparsespikformer.model import create_model, load_dataset
from sparsespikformer.model.nn.config import SpikformerConfig
from sparsespikformer.model.nn.spikformer import Spikformer
from sparsespikformer.model.training.loop import evaluate

PRESET = "spikformer_4_64_digits"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _spiking(seed: int):
    """The preset with random BatchNorm affine parameters: an untrained network is silent
    (every logit equal), which would make the accuracy and loss the same for any weights."""
    torch.manual_seed(seed)
    model = create_model(PRESET)
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.weight.data = 1.0 + 2.0 * torch.rand(module.weight.shape, generator=generator)
            module.bias.data = 0.5 + torch.rand(module.bias.shape, generator=generator)
    return model.eval()


def _reference_state(model) -> OrderedDict:
    ref = OrderedDict((f"module.{k}", v) for k, v in model.state_dict().items())
    for b in range(model.config.depth):   # never-called LayerNorms of the reference blocks
        for norm in ("norm1", "norm2"):
            ref[f"module.block.{b}.{norm}.weight"] = torch.ones(model.config.embed_dim)
            ref[f"module.block.{b}.{norm}.bias"] = torch.zeros(model.config.embed_dim)
    return ref


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """The case's four files, plus one with an EMA copy; and the models they hold."""
    out = tmp_path_factory.mktemp("case01")
    main_model, ema_model = _spiking(0), _spiking(1)
    ref = _reference_state(main_model)
    ckpt = {"epoch": 309, "arch": "spikformer", "state_dict": ref, "optimizer": {},
            "version": 2, "args": argparse.Namespace(model="spikformer", batch_size=64),
            "metric": 95.19}
    torch.save(ckpt, out / "model_best.pth.tar")
    torch.save(ref, out / "bare_dataparallel_state_dict.pth")
    torch.save({k: v for k, v in ckpt.items() if k != "args"}, out / "timm_without_args.pth.tar")
    torch.save(OrderedDict((k[len("module."):], v) for k, v in ref.items()),
               out / "plain_reference_state_dict.pth")
    torch.save({**ckpt, "state_dict_ema": _reference_state(ema_model)}, out / "with_ema.pth.tar")
    test_set = load_dataset("digits", "test")
    expected = {name: evaluate(model, test_set)
                for name, model in (("main", main_model), ("ema", ema_model))}
    return out, expected


def _line(scores) -> str:
    return f"accuracy {scores['accuracy']:.2%}, loss {scores['loss']:.4f}"


@pytest.mark.parametrize("name", ["model_best.pth.tar", "bare_dataparallel_state_dict.pth",
                                  "timm_without_args.pth.tar", "plain_reference_state_dict.pth"])
def test_eval_reads_every_reference_layout(case, name, capsys):
    out, expected = case
    assert main(["eval", "--preset", PRESET, "--checkpoint", str(out / name)]) == 0
    assert _line(expected["main"]) in capsys.readouterr().out


def test_eval_ema_reads_the_ema_weights(case, capsys):
    out, expected = case
    assert _line(expected["main"]) != _line(expected["ema"])   # the test can tell them apart
    assert main(["eval", "--preset", PRESET, "--checkpoint", str(out / "with_ema.pth.tar"),
                 "--ema"]) == 0
    assert _line(expected["ema"]) in capsys.readouterr().out


def test_trace_reads_a_dataparallel_state_dict(case, tmp_path, capsys):
    out, _ = case
    assert main(["trace", "--preset", PRESET, "--checkpoint",
                 str(out / "bare_dataparallel_state_dict.pth"), "--samples", "4",
                 "--out", str(tmp_path / "trace")]) == 0
    assert (tmp_path / "trace").is_dir()


def test_without_preset_the_error_names_the_matching_presets(case, capsys):
    out, _ = case
    assert exit_code(["eval", "--checkpoint", str(out / "model_best.pth.tar")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert ("no preset recorded in the checkpoint; pass --preset (checkpoint is spikformer "
            f"4-64 CIFAR form; matching presets: {PRESET})") in err


def test_checkpoint_of_another_form_is_named(tmp_path, capsys):
    imagenet = Spikformer(SpikformerConfig(form="imagenet", embed_dim=64, num_heads=4,
                                           depth=4, img_size=64, num_classes=10))
    torch.save({"state_dict": imagenet.state_dict(), "args": argparse.Namespace()},
               tmp_path / "imagenet.pth.tar")
    assert exit_code(["eval", "--preset", PRESET,
                      "--checkpoint", str(tmp_path / "imagenet.pth.tar")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert (f"weights do not fit --preset {PRESET}: checkpoint is spikformer 4-64 ImageNet "
            f"form (3 input channels), --preset {PRESET} is spikformer 4-64 CIFAR form "
            f"(1 input channel);") in err


def test_ema_without_checkpoint_is_bad_input(tmp_path, capsys):
    assert exit_code(["trace", "--preset", PRESET, "--ema", "--out", str(tmp_path / "t")]) == 2
    assert "--ema needs --checkpoint" in capsys.readouterr().err
