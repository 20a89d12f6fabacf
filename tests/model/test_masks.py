"""Weight masks: what is prunable, magnitude / random pruning, and zeros that stay zero."""

from __future__ import annotations

import pytest
import torch
from pruning_fixtures import TINY_PRUNABLE, tiny_dataset, tiny_model, tiny_train_config
from torch import nn

from sparsespikformer.model.pruning.masks import (
    MaskEnforcer,
    apply_masks_to_optimizer_state,
    apply_masks_to_weights,
    count_surviving,
    full_masks,
    load_masks,
    magnitude_prune,
    model_weight_sparsity,
    prunable_parameters,
    random_prune,
    save_masks,
    weight_sparsity,
)
from sparsespikformer.model.training.checkpoint import load_checkpoint
from sparsespikformer.model.training.loop import build_optimizer, train


def test_prunable_weights_are_convs_and_linears_not_biases_or_batchnorm():
    model = tiny_model()
    assert sorted(prunable_parameters(model)) == ["0.weight", "4.weight"]
    assert sum(m.numel() for m in full_masks(model).values()) == TINY_PRUNABLE


def _brute_force_global_keep(model: nn.Module, n_keep: int) -> dict[str, torch.Tensor]:
    """Oracle: list every (|w|, name, position), sort, keep the n_keep largest."""
    entries = []
    for name, p in prunable_parameters(model).items():
        for position, value in enumerate(p.detach().flatten().tolist()):
            entries.append((abs(value), name, position))
    entries.sort(key=lambda e: e[0], reverse=True)
    keep = {name: torch.zeros(p.numel(), dtype=torch.bool)
            for name, p in prunable_parameters(model).items()}
    for _, name, position in entries[:n_keep]:
        keep[name][position] = True
    return {name: k.view_as(prunable_parameters(model)[name]) for name, k in keep.items()}


def test_global_magnitude_prune_matches_brute_force_sort():
    model = tiny_model(seed=3)
    masks = magnitude_prune(model, full_masks(model), 0.25, scope="global")
    expected = _brute_force_global_keep(model, TINY_PRUNABLE - round(0.25 * TINY_PRUNABLE))
    for name in masks:
        assert torch.equal(masks[name], expected[name]), name


def test_layerwise_prune_removes_the_rate_from_every_tensor():
    model = tiny_model(seed=1)
    masks = magnitude_prune(model, full_masks(model), 0.5, scope="layer")
    params = prunable_parameters(model)
    for name, mask in masks.items():
        assert int(mask.sum()) == params[name].numel() // 2
        smallest_kept = params[name].detach().abs()[mask].min()
        largest_pruned = params[name].detach().abs()[~mask].max()
        assert smallest_kept >= largest_pruned


def test_repeated_pruning_follows_closed_form_and_never_revives_weights():
    model = tiny_model(seed=2)
    masks = full_masks(model)
    for k in range(1, 9):
        previous = masks
        masks = magnitude_prune(model, masks, 0.25)
        # per-round rounding moves the count by at most half a weight per round
        assert abs(weight_sparsity(masks) - (1 - 0.75 ** k)) <= k * 0.5 / TINY_PRUNABLE
        for name in masks:
            assert not bool((masks[name] & ~previous[name]).any())   # subset of survivors


def test_random_prune_is_seeded_and_removes_the_rate():
    masks = full_masks(tiny_model())
    a, b = random_prune(masks, 0.5, seed=4), random_prune(masks, 0.5, seed=4)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert count_surviving(a) == TINY_PRUNABLE - round(0.5 * TINY_PRUNABLE)


def test_bad_rate_and_scope_are_value_errors():
    model = tiny_model()
    with pytest.raises(ValueError, match="rate"):
        magnitude_prune(model, full_masks(model), 1.0)
    with pytest.raises(ValueError, match="scope"):
        magnitude_prune(model, full_masks(model), 0.2, scope="block")


def test_masks_round_trip_and_missing_file(tmp_path):
    masks = magnitude_prune(tiny_model(), full_masks(tiny_model()), 0.3)
    save_masks(masks, tmp_path / "mask.pt")
    loaded = load_masks(tmp_path / "mask.pt")
    assert all(torch.equal(masks[n], loaded[n]) for n in masks)
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        load_masks(tmp_path / "nothing.pt")


def test_optimizer_state_masking_zeroes_adam_moments():
    model = tiny_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.rand(4, 1, 4, 4)).sum().backward()
    optimizer.step()
    masks = magnitude_prune(model, full_masks(model), 0.5)
    apply_masks_to_optimizer_state(optimizer, model, masks)
    for name, p in prunable_parameters(model).items():
        for key in ("exp_avg", "exp_avg_sq"):
            assert bool((optimizer.state[p][key][~masks[name]] == 0).all())


def test_pruned_weights_stay_exactly_zero_through_training_and_resume(tmp_path):
    train_set, test_set = tiny_dataset("train"), tiny_dataset("test")
    model = tiny_model(seed=5)
    masks = magnitude_prune(model, full_masks(model), 0.6)
    apply_masks_to_weights(model, masks)
    enforcer = MaskEnforcer(masks)
    seen_nonzero = []

    def check_forward(module, inputs):
        seen_nonzero.append(any(bool((p.detach()[~masks[n]] != 0).any())
                                for n, p in prunable_parameters(module).items()))

    model.register_forward_pre_hook(check_forward)
    train(model, train_set, test_set, tiny_train_config(epochs=1), tmp_path, progress=False,
          after_backward=enforcer.after_backward,
          after_optimizer_step=enforcer.after_optimizer_step)
    # resume the same run for a second epoch, from the checkpoint, in a fresh model
    resumed = tiny_model(seed=99)
    resumed.register_forward_pre_hook(check_forward)
    train(resumed, train_set, test_set, tiny_train_config(epochs=2), tmp_path, progress=False,
          after_backward=enforcer.after_backward,
          after_optimizer_step=enforcer.after_optimizer_step)
    assert seen_nonzero and not any(seen_nonzero)
    assert model_weight_sparsity(resumed) >= weight_sparsity(masks)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    optimizer = build_optimizer(resumed, tiny_train_config(epochs=2))
    optimizer.load_state_dict(state["optimizer"])
    for name, p in prunable_parameters(resumed).items():
        assert bool((state["model"][name][~masks[name]] == 0).all())
        # AdamW's moments of pruned weights never left zero
        for key in ("exp_avg", "exp_avg_sq"):
            assert bool((optimizer.state[p][key][~masks[name]] == 0).all())
