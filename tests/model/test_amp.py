"""Half precision: autocast for the forward pass, with the membrane and the spike products
kept in float32, and what it changes on a trained digits model.

Oracles: the float32 computation itself (every bf16 value is a float32, so the float32
LIF of a bf16 current is the exact answer), exact integer products, and the float32
model's accuracy and firing rates.
"""

from __future__ import annotations

import pytest
import torch

from sparsespikformer.model import create_model
from sparsespikformer.model.data import load_dataset
from sparsespikformer.model.data.base import InMemoryDataset
from sparsespikformer.model.nn.attention import SpikeMatmul
from sparsespikformer.model.nn.lif import lif_multistep
from sparsespikformer.model.tracing.record import record_trace
from sparsespikformer.model.training.devices import Runtime
from sparsespikformer.model.training.evaluation import evaluate
from sparsespikformer.model.training.loop import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_lif_membrane_stays_float32_for_half_precision_currents():
    """A bf16 membrane would round h = v + (x - v) / 2 to 8 significant bits and flip
    spikes near the threshold; the float32 LIF of the same (bf16) currents is the oracle."""
    generator = torch.Generator().manual_seed(0)
    current = (torch.rand(4, 64, 1000, generator=generator) * 2.2).to(torch.bfloat16)
    for dtype in (torch.bfloat16, torch.float16):
        x = current.to(dtype)
        spikes = lif_multistep(x)
        assert spikes.dtype == dtype
        assert torch.equal(spikes.float(), lif_multistep(x.float()))


def test_lif_gradient_passes_through_the_float32_membrane():
    x = (torch.rand(3, 5, 7) * 2).to(torch.bfloat16).requires_grad_()
    lif_multistep(x).float().sum().backward()
    reference = x.detach().float().requires_grad_()
    lif_multistep(reference).sum().backward()
    assert x.grad.dtype == torch.bfloat16
    assert torch.equal(x.grad, reference.grad.to(torch.bfloat16))


def test_spike_products_are_exact_under_autocast():
    """(Q Kᵀ) V of spikes reaches N · d = 64 · 32 = 2048; bf16 holds integers only to 256."""
    generator = torch.Generator().manual_seed(1)
    q, k, v = ((torch.rand(2, 3, 2, 64, 32, generator=generator) < 0.5).float()
               for _ in range(3))
    attention = q @ k.transpose(-2, -1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = SpikeMatmul("attn_v")(SpikeMatmul("attn_qk")(q, k.transpose(-2, -1)), v)
    assert out.dtype == torch.float32
    assert torch.equal(out, attention @ v)
    assert float(out.max()) > 256


# ---------------------------------------------------------------- a trained digits model


@pytest.fixture(scope="module")
def trained_digits(tmp_path_factory):
    """The digits preset cut to one block of width 32, T=2, on the native 8x8 digits, trained
    2 epochs (about 60 % test accuracy, against 10 % by chance: logits still close together,
    which makes a precision change more likely to flip a prediction)."""
    train_set = load_dataset("digits", "train", img_size=8)
    test_set = load_dataset("digits", "test", img_size=8)
    torch.manual_seed(0)
    model = create_model("spikformer_4_64_digits", depth=1, embed_dim=32, num_heads=4,
                         timesteps=2, img_size=8)
    config = TrainConfig(epochs=2, batch_size=32, lr=2e-2, warmup_epochs=0.5, seed=0,
                         eval_batch_size=360)
    train(model, train_set, test_set, config, tmp_path_factory.mktemp("digits"),
          progress=False, runtime=Runtime(device="cpu"))
    return model.eval(), test_set


def test_bf16_accuracy_changes_by_at_most_one_test_sample(trained_digits):
    model, test_set = trained_digits
    full = evaluate(model, test_set, 128)
    half = evaluate(model, test_set, 128, amp="bf16")
    assert full["accuracy"] > 0.5
    assert abs(full["accuracy"] - half["accuracy"]) <= 0.01


def test_bf16_traced_firing_rates_move_by_at_most_1e_3(trained_digits):
    model, test_set = trained_digits
    images, labels = test_set.get_batch(torch.arange(128))
    full = record_trace(model, images, labels, batch_size=64)
    half = record_trace(model, images, labels, batch_size=64, amp="bf16")
    assert half.manifest["amp"] == "bf16" and "amp" not in full.manifest
    lif = full.layers["kind"] == "lif"
    rates = (full.layers.loc[lif, "out_nonzero_fraction"].to_numpy(),
             half.layers.loc[lif, "out_nonzero_fraction"].to_numpy())
    assert abs(rates[0] - rates[1]).max() <= 1e-3
    # counts stay exact integers per sample under autocast (the recorder reads float32)
    for layer, arrays in half.arrays.items():
        events = arrays["sample_in_events"]
        kind = half.layers.set_index("layer").loc[layer, "in_value_kind"]
        if kind in ("spike", "integer"):
            assert (events == events.round()).all(), layer


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_training_under_autocast_records_its_mode(tmp_path, amp):
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 16 * 16, 10))
    dataset = load_dataset("digits", "test")
    images, labels = dataset.get_batch(torch.arange(64))
    small = InMemoryDataset(images, labels, dataset.info)
    history = train(model, small, small, TrainConfig(epochs=1, batch_size=16, lr=1e-2),
                    tmp_path, progress=False, runtime=Runtime(device="cpu", amp=amp))
    assert history["amp"].tolist() == [amp] and history["device_type"].tolist() == ["cpu"]
    assert all(torch.isfinite(p).all() for p in model.parameters())
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert checkpoint["runtime"] == {"world_size": 1, "device_type": "cpu", "amp": amp}
    assert ("grad_scaler" in checkpoint) == (amp == "fp16")
