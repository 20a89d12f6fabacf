"""The one checkpoint loader (`model/training/weights.py`) on every layout the field writes.

Each layout is written here the way its tool writes it: real wrapper modules where they are
cheap to build (DataParallel, AveragedModel), otherwise a module with the same attribute
names (timm's ModelEmaV2 keeps `self.module`, ModelEma v1 `self.ema`, torch.compile's
OptimizedModule `self._orig_mod`, a LightningModule `self.model`). The oracle is the tensors
that went into the file: after loading, the model must hold exactly those.
"""

from __future__ import annotations

import argparse
import re

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from sparsespikformer.model import create_model, list_models
from sparsespikformer.model.nn.config import SpikformerConfig
from sparsespikformer.model.nn.spikformer import Spikformer
from sparsespikformer.model.training.checkpoint_architecture import architecture_of
from sparsespikformer.model.training.selector_training import load_teacher_for
from sparsespikformer.model.training.weights import SHOWN_KEYS, load_model_weights
from sparsespikformer.simulator.errors import CheckpointError


def tiny(seed=0, **overrides):
    torch.manual_seed(seed)
    return create_model("spikformer_4_64_digits", **{"depth": 1, "embed_dim": 16,
                                                      "num_heads": 2, **overrides})


class Holder(nn.Module):
    """A module holding another under `name`, as wrappers and Lightning modules do."""

    def __init__(self, name, inner):
        super().__init__()
        self.add_module(name, inner)


def holder(*names):
    """The wrapping `names[0](names[1](...(model)))`, as a function of the model."""
    def wrap(model):
        for name in reversed(names):
            model = Holder(name, model)
        return model
    return wrap


def timm_args():
    return argparse.Namespace(model="spikformer", batch_size=64, lr=5e-4, sched="cosine",
                              opt_betas=None, mixup_off_epoch=200)


def assert_holds(model, source):
    expected = source.state_dict()
    loaded = model.state_dict()
    assert loaded.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key


# ---------------------------------------------------------------- containers

CONTAINERS = {
    "bare": lambda sd: sd,
    # timm CheckpointSaver._save (the reference CIFAR / ImageNet train.py)
    "timm_saver": lambda sd: {"epoch": 309, "arch": "spikformer", "state_dict": sd,
                              "optimizer": {"state": {}, "param_groups": []}, "version": 2,
                              "args": timm_args(), "amp_scaler": {"scale": 65536.0},
                              "metric": 95.19},
    "timm_saver_no_args": lambda sd: {"epoch": 3, "arch": "x", "state_dict": sd,
                                      "optimizer": {}, "version": 2},
    # the reference cifar10dvs/train.py
    "reference_dvs": lambda sd: {"model": sd, "optimizer": {}, "lr_scheduler": {"t_initial": 96},
                                 "epoch": 95, "args": timm_args(), "max_test_acc1": 80.9,
                                 "test_acc5_at_max_test_acc1": 99.0},
    "model_state": lambda sd: {"model_state": sd, "epoch": 1},
    # the PyTorch tutorial "Saving and loading a general checkpoint"
    "model_state_dict": lambda sd: {"epoch": 5, "model_state_dict": sd,
                                    "optimizer_state_dict": {}, "loss": 0.4},
    # a Lightning checkpoint of a LightningModule holding the network as self.model
    "lightning": lambda sd: {"epoch": 2, "global_step": 100, "pytorch-lightning_version": "2.4",
                             "state_dict": {f"model.{k}": v for k, v in sd.items()},
                             "optimizer_states": [{}], "lr_schedulers": [],
                             "hyper_parameters": {"lr": 1e-3}},
    "nested": lambda sd: {"state_dict": {"model": sd}, "meta": {"epoch": 1}},
}


@pytest.mark.parametrize("layout", CONTAINERS)
def test_every_container_loads(tmp_path, layout):
    source = tiny(seed=1)
    torch.save(CONTAINERS[layout](source.state_dict()), tmp_path / "c.pth")
    model = tiny(seed=2)
    load_model_weights(model, tmp_path / "c.pth")
    assert_holds(model, source)


EMA_CONTAINERS = {
    "timm_saver": lambda sd, ema: {"epoch": 1, "state_dict": sd, "state_dict_ema": ema,
                                   "args": timm_args(), "version": 2, "optimizer": {}},
    "deit": lambda sd, ema: {"model": sd, "model_ema": ema, "epoch": 1, "args": timm_args()},
    # MMEngine's EMAHook: the averaged model keeps the copy as .module plus a 'steps' counter
    "mmengine": lambda sd, ema: {"state_dict": sd, "ema_state_dict": {
        "steps": torch.tensor(7), **{f"module.{k}": v for k, v in ema.items()}}},
    # a LightningModule with self.model and self.ema = ModelEmaV2(self.model)
    "lightning_with_ema": lambda sd, ema: {"state_dict": {
        **{f"model.{k}": v for k, v in sd.items()},
        **{f"ema.module.{k}": v for k, v in ema.items()}}, "epoch": 1},
}


@pytest.mark.parametrize("layout", EMA_CONTAINERS)
def test_ema_flag_picks_the_ema_copy_and_default_the_main_one(tmp_path, layout):
    main, ema = tiny(seed=1), tiny(seed=3)
    torch.save(EMA_CONTAINERS[layout](main.state_dict(), ema.state_dict()), tmp_path / "c.pth")
    model = tiny(seed=2)
    load_model_weights(model, tmp_path / "c.pth")
    assert_holds(model, main)
    load_model_weights(model, tmp_path / "c.pth", ema=True)
    assert_holds(model, ema)


def test_ema_flag_without_ema_weights_is_one_line_naming_the_keys(tmp_path):
    torch.save({"state_dict": tiny().state_dict(), "epoch": 1}, tmp_path / "c.pth")
    with pytest.raises(CheckpointError, match=r"c\.pth: no EMA weights .*'state_dict', "
                                              r"'epoch'.*drop --ema") as info:
        load_model_weights(tiny(), tmp_path / "c.pth", ema=True)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- wrapper prefixes

WRAPPERS = {
    "data_parallel": nn.DataParallel,                          # 'module.'
    "averaged_model": AveragedModel,                           # 'module.' + 'n_averaged'
    "timm_model_ema_v2": holder("module"),                     # ModelEmaV2/V3: self.module
    "timm_model_ema_v1": holder("ema"),                        # ModelEma: self.ema
    "compiled": holder("_orig_mod"),                           # OptimizedModule._orig_mod
    "lightning": holder("model"),
    "compiled_in_ddp": lambda m: nn.DataParallel(holder("_orig_mod")(m)),
    "ddp_in_compiled": lambda m: holder("_orig_mod")(nn.DataParallel(m)),
    "swa_of_ddp": lambda m: AveragedModel(nn.DataParallel(m)),
    "lightning_ema_of_compiled": lambda m: holder("model", "module", "_orig_mod")(m),
    "any_name": holder("spikformer", "net"),
}


@pytest.mark.parametrize("wrapper", WRAPPERS)
@pytest.mark.parametrize("container", ["bare", "timm_saver"])
def test_wrapper_prefixes_in_any_combination(tmp_path, wrapper, container):
    source = tiny(seed=1)
    wrapped = WRAPPERS[wrapper](source).state_dict()
    assert not any(k.startswith("patch_embed.") for k in wrapped)   # really prefixed
    torch.save(CONTAINERS[container](wrapped), tmp_path / "c.pth")
    model = tiny(seed=2)
    load_model_weights(model, tmp_path / "c.pth")
    assert_holds(model, source)


def test_activation_checkpoint_and_fsdp_segments_inside_keys(tmp_path):
    # named_parameters() of a model with wrapped sub-modules (e.g. an EMA built from it)
    source = tiny(seed=1)
    inside = {k.replace("block.0.", "block.0._checkpoint_wrapped_module.")
              .replace("patch_embed.", "_fsdp_wrapped_module.patch_embed."): v
              for k, v in source.state_dict().items()}
    torch.save({f"module.{k}": v for k, v in inside.items()}, tmp_path / "c.pth")
    model = tiny(seed=2)
    load_model_weights(model, tmp_path / "c.pth")
    assert_holds(model, source)


def test_two_copies_that_nothing_tells_apart_is_an_error(tmp_path):
    sd = tiny().state_dict()
    torch.save({**{f"student.{k}": v for k, v in sd.items()},
                **{f"other.{k}": v for k, v in sd.items()}}, tmp_path / "c.pth")
    with pytest.raises(CheckpointError, match="several copies of the model.*'other.', "
                                              "'student.'"):
        load_model_weights(tiny(), tmp_path / "c.pth")


# ---------------------------------------------------------------- dtypes and names

@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_half_and_double_weights_load_into_the_float32_model(tmp_path, dtype):
    source = tiny(seed=1)
    torch.save(source.to(dtype).state_dict(), tmp_path / "c.pth")
    model = tiny(seed=2)
    load_model_weights(model, tmp_path / "c.pth")
    for key, value in source.state_dict().items():
        loaded = model.state_dict()[key]
        if value.is_floating_point():
            assert loaded.dtype == torch.float32
            assert torch.equal(loaded, value.float()), key    # the stored values, widened
        else:
            assert torch.equal(loaded, value), key            # num_batches_tracked stays int


@pytest.mark.parametrize("form", ["cifar", "imagenet", "dvs"])
def test_reference_unused_modules_are_dropped(tmp_path, form):
    config = SpikformerConfig(form=form, in_channels=2 if form == "dvs" else 3, embed_dim=16,
                              num_heads=2, depth=2, img_size=64 if form != "cifar" else 32)
    source = Spikformer(config)
    sd = {f"module.{k}": v for k, v in source.state_dict().items()}
    for b in range(2):
        for norm in ("norm1", "norm2"):
            sd[f"module.block.{b}.{norm}.weight"] = torch.ones(16)
            sd[f"module.block.{b}.{norm}.bias"] = torch.zeros(16)
    if form == "dvs":   # cifar10dvs/model.py also defines pos_embed and a final norm
        sd.update({"module.pos_embed": torch.zeros(1, 64, 16),
                   "module.norm.weight": torch.ones(16), "module.norm.bias": torch.zeros(16)})
    torch.save({"model": sd, "args": timm_args()}, tmp_path / "c.pth")
    model = Spikformer(config)
    load_model_weights(model, tmp_path / "c.pth")
    assert_holds(model, source)


# ---------------------------------------------------------------- errors

def _error(tmp_path, saved, model, **options) -> str:
    torch.save(saved, tmp_path / "c.pth")
    with pytest.raises(CheckpointError) as info:
        load_model_weights(model, tmp_path / "c.pth", **options)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{tmp_path / 'c.pth'}: ")
    return message


def _cifar(depth, dim, heads, classes=10):
    return Spikformer(SpikformerConfig(embed_dim=dim, num_heads=heads, depth=depth,
                                       num_classes=classes))


def test_other_form_is_named(tmp_path):
    imagenet = Spikformer(SpikformerConfig(form="imagenet", embed_dim=32, num_heads=2,
                                           depth=2, num_classes=1000, img_size=64))
    message = _error(tmp_path, {"state_dict": imagenet.state_dict()}, _cifar(1, 16, 2),
                     model_label="--preset tiny")
    assert ("checkpoint is spikformer 2-32 ImageNet form (1000 classes), --preset tiny is "
            "spikformer 1-16 CIFAR form (10 classes);") in message


def test_other_size_and_classes_are_named(tmp_path):
    message = _error(tmp_path, {"model": _cifar(2, 32, 4, classes=100).state_dict()},
                     _cifar(1, 16, 2))
    assert ("checkpoint is spikformer 2-32 CIFAR form (100 classes), the model is "
            "spikformer 1-16 CIFAR form (10 classes)") in message


def test_selector_checkpoint_into_a_dense_model_is_named(tmp_path):
    sparse = create_model("sparsespikformer_4_64_digits", depth=2, embed_dim=16, num_heads=2,
                          selector_blocks=(1,))
    message = _error(tmp_path, sparse.state_dict(), tiny(depth=2))
    assert ("checkpoint is spikformer 2-16 CIFAR form (learned token selectors before "
            "block 1), the model is spikformer 2-16 CIFAR form (no learned token "
            "selectors); 4 unexpected: token_selectors.1.mlp.0.weight, "
            "token_selectors.1.mlp.0.bias, token_selectors.1.mlp.2.weight, "
            "token_selectors.1.mlp.2.bias (weights from the file itself)") in message


def test_lists_are_whole_keys_then_a_count(tmp_path):
    sd = {f"module.{k}": v for k, v in tiny().state_dict().items()
          if not k.startswith("block.")}
    sd["module.extra.weight"] = torch.zeros(2)
    model = tiny()
    message = _error(tmp_path, {"state_dict": sd}, model)
    missing = [k for k in model.state_dict() if k.startswith("block.")
               and not k.endswith("num_batches_tracked")]
    listed = ", ".join(missing[:SHOWN_KEYS])
    assert f"{len(missing)} missing: {listed} and {len(missing) - SHOWN_KEYS} more;" in message
    assert "1 unexpected: extra.weight" in message
    assert "weights from ['state_dict'], wrapper prefix 'module.' removed" in message


def test_shape_mismatches_are_listed_with_both_shapes(tmp_path):
    sd = tiny().state_dict()
    sd["head.weight"] = torch.zeros(7, 16)
    sd["head.bias"] = torch.zeros(7)
    message = _error(tmp_path, sd, tiny())
    assert ("2 of another shape: head.weight checkpoint (7, 16) vs model (10, 16), "
            "head.bias checkpoint (7) vs model (10) (weights from the file itself)") in message


def test_a_container_without_weights_names_its_keys(tmp_path):
    message = _error(tmp_path, {"w": torch.zeros(2), "step": 3}, tiny())
    assert "no model weights: neither a state dict nor a training checkpoint" in message
    assert "the file has keys 'w', 'step'" in message


class Payload:
    """A global torch must refuse: unpickling it would run `__setstate__`."""

    ran = False

    def __setstate__(self, state):
        Payload.ran = True


def test_unsafe_globals_are_refused_by_name_never_run(tmp_path):
    torch.save({"state_dict": tiny().state_dict(), "extra": Payload()}, tmp_path / "c.pth")
    with pytest.raises(CheckpointError, match=re.escape(
            f"{tmp_path / 'c.pth'}: not a readable checkpoint (it pickles "
            f"{__name__}.Payload, which torch.load(weights_only=True) does not load")):
        load_model_weights(tiny(), tmp_path / "c.pth")
    assert not Payload.ran


# ---------------------------------------------------------------- architecture from keys

@pytest.mark.parametrize("preset", list_models())
def test_architecture_read_from_keys_is_the_presets_config(preset):
    with torch.device("meta"):
        model = create_model(preset)
    config = model.config
    learned = config.selector_blocks if getattr(config, "scorer", None) == "learned" else ()
    found = architecture_of(model.state_dict())
    assert (found.form, found.depth, found.embed_dim, found.num_classes, found.in_channels,
            found.learned_selectors) == (config.form, config.depth, config.embed_dim,
                                         config.num_classes, config.in_channels, tuple(learned))


def test_teacher_is_read_by_the_same_loader(tmp_path):
    """`train --teacher` / `prune --teacher` take a reference timm checkpoint as well."""
    student = create_model("sparsespikformer_4_64_digits", depth=2, embed_dim=16, num_heads=2,
                           selector_blocks=(1,))
    dense = tiny(seed=4, depth=2)
    torch.save({"state_dict": {f"module.{k}": v for k, v in dense.state_dict().items()},
                "args": timm_args(), "epoch": 9}, tmp_path / "model_best.pth.tar")
    assert_holds(load_teacher_for(student, tmp_path / "model_best.pth.tar"), dense)
