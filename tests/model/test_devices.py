"""`--device` resolution, sync batch norm conversion, recipes, and (with a GPU only) the
CPU == GPU checks. Without CUDA every GPU test skips."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sparsespikformer.model.training.devices import Runtime, check_amp, resolve_device
from sparsespikformer.model.training.recipes import RECIPES, get_recipe, with_changes
from sparsespikformer.model.training.sync_batchnorm import (
    CpuSyncBatchNorm,
    to_plain_batchnorm,
    to_sync_batchnorm,
)
from sparsespikformer.simulator.errors import InputError

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_auto_is_cuda_when_present_else_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("CPU") == torch.device("cpu")


@pytest.mark.parametrize("spec, message", [
    ("tpu", "expected auto | cpu"),
    ("cuda:one", "expected cuda or cuda:N"),
    ("cuda:99", "GPU"),
])
def test_bad_devices_are_input_errors(spec, message):
    with pytest.raises(InputError, match=message):
        resolve_device(spec)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_says_so():
    with pytest.raises(InputError, match="CUDA is not available"):
        resolve_device("cuda")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_mps_without_an_apple_gpu_says_so():
    with pytest.raises(InputError, match="no usable Apple GPU"):
        resolve_device("mps")


def test_amp_modes():
    assert [check_amp(mode) for mode in ("off", "bf16", "fp16")] == ["off", "bf16", "fp16"]
    with pytest.raises(InputError, match="--amp 'fp8'"):
        Runtime(amp="fp8")


def test_sync_batchnorm_round_trip_keeps_names_values_and_classes():
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.Flatten(),
                          nn.BatchNorm1d(3 * 4 * 4))
    model[1].running_mean.fill_(0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    to_sync_batchnorm(model, torch.device("cpu"))
    assert isinstance(model[1], CpuSyncBatchNorm) and isinstance(model[3], CpuSyncBatchNorm)
    assert model.state_dict().keys() == before.keys()
    to_plain_batchnorm(model)
    assert type(model[1]) is nn.BatchNorm2d and type(model[3]) is nn.BatchNorm1d
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_sync_batchnorm_in_one_process_is_plain_batchnorm():
    torch.manual_seed(0)
    plain = nn.BatchNorm1d(4)
    synced = CpuSyncBatchNorm(4)
    x = torch.randn(8, 4, 5)
    assert torch.equal(plain(x), synced(x))
    assert torch.equal(plain.running_var, synced.running_var)


def test_recipes_carry_the_published_figures():
    """docs/references.md, Spikformer CIFAR-10: 300 epochs, batch 128, AdamW 5e-4, wd 6e-2,
    cosine to 1e-5, 20 warm-up epochs, RandAugment m9, mixup 0.5 off after epoch 200,
    erasing 0.25, label smoothing 0.1; SparseSpikformer: batch 64, LTH 25 %, up to 15
    rounds, rewinding to epoch 20."""
    cifar = get_recipe("spikformer_cifar10").train
    assert (cifar.epochs, cifar.batch_size, cifar.lr, cifar.weight_decay, cifar.min_lr,
            cifar.warmup_epochs) == (300, 128, 5e-4, 6e-2, 1e-5, 20)
    assert (cifar.mixup_alpha, cifar.mixup_off_epoch, cifar.label_smoothing) == (0.5, 200, 0.1)
    assert (cifar.augment.randaugment_magnitude, cifar.augment.erase_prob) == (9, 0.25)
    assert cifar.augment.crop_padding == 4
    sparse = get_recipe("sparsespikformer_cifar10")
    assert sparse.train.batch_size == 64
    assert sparse.lottery == {"rounds": 15, "rate": 0.25, "rewind_epoch": 20}
    assert get_recipe("spikformer_imagenet").train.augment.crop_padding == 0
    assert set(RECIPES) >= {"spikformer_cifar10", "spikformer_imagenet",
                            "sparsespikformer_cifar10"}
    with pytest.raises(InputError, match="--recipe 'nope'"):
        get_recipe("nope")


def test_a_run_shorter_than_the_warm_up_warms_up_over_all_of_it():
    cifar = get_recipe("spikformer_cifar10").train
    assert with_changes(cifar, {"epochs": 5}).warmup_epochs == 5
    assert with_changes(cifar, {"epochs": 50}).warmup_epochs == 20
    with pytest.raises(InputError, match="warmup_epochs"):
        with_changes(cifar, {"epochs": 5, "warmup_epochs": 10})


def test_the_cli_lists_every_recipe():
    from sparsespikformer.analysis.cli.arg_groups import AMP_CHOICES, RECIPE_NAMES
    from sparsespikformer.model.training.devices import AMP_MODES

    assert set(RECIPE_NAMES) == set(RECIPES) and AMP_CHOICES == AMP_MODES


# ---------------------------------------------------------------- with a GPU only


@needs_cuda
def test_trace_on_cuda_matches_the_cpu_trace():
    """Counts are exact functions of the spikes; CPU and GPU float32 convolutions round
    differently, so a spike may flip where a current sits within rounding of the
    threshold: firing rates agree to 1e-3, counts to 0.1 %."""
    from sparsespikformer.model import create_model
    from sparsespikformer.model.data import load_dataset
    from sparsespikformer.model.tracing.record import record_trace

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    model = create_model("spikformer_4_64_digits").eval()
    images, labels = load_dataset("digits", "test").get_batch(torch.arange(64))
    cpu = record_trace(model, images, labels)
    gpu = record_trace(model.to("cuda"), images, labels)
    assert list(cpu.layers["layer"]) == list(gpu.layers["layer"])
    rates = (cpu.layers["out_nonzero_fraction"] - gpu.layers["out_nonzero_fraction"]).abs()
    assert rates.max() <= 1e-3
    for column in ("sops", "effective_ops", "nonzero_pairs"):
        scale = cpu.layers[column].abs().clip(lower=1.0)
        assert ((cpu.layers[column] - gpu.layers[column]).abs() / scale).max() <= 1e-3


@needs_cuda
def test_training_on_cuda_with_bf16_runs_and_records_it(tmp_path):
    from sparsespikformer.model.data import load_dataset
    from sparsespikformer.model.data.base import InMemoryDataset
    from sparsespikformer.model.training.loop import TrainConfig, train

    dataset = load_dataset("digits", "test")
    images, labels = dataset.get_batch(torch.arange(64))
    small = InMemoryDataset(images, labels, dataset.info)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 16 * 16, 10))
    history = train(model, small, small, TrainConfig(epochs=1, batch_size=16), tmp_path,
                    progress=False, runtime=Runtime(device="cuda", amp="bf16"))
    assert history["device_type"].tolist() == ["cuda"]
    assert next(model.parameters()).is_cuda
