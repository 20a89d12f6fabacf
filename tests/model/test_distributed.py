"""Training under torchrun: two gloo processes spawned as torchrun would start them.

Oracles: a single process training the same global batches (`--batch-size` is the global
batch, and every rank draws the randomness of the whole batch), and DDP's contract that
averaged gradients keep the ranks' parameters identical.
"""

from __future__ import annotations

import pytest
import torch
from ddp_workers import CONFIG, STEPS_PER_EPOCH, lottery, spawn, steps, tiny_spikformer

from sparsespikformer.model.pruning.lottery_store import MASK_NAME, round_dir
from sparsespikformer.model.pruning.masks import load_masks
from sparsespikformer.model.training.distributed import Shard

pytestmark = pytest.mark.skipif(not torch.distributed.is_available()
                                or not torch.distributed.is_gloo_available(),
                                reason="needs torch.distributed with gloo")


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Every scenario on two spawned ranks (one spawn: each costs seconds of imports)."""
    out = tmp_path_factory.mktemp("ddp")
    return spawn("all", 2, out), out


@pytest.fixture(scope="module")
def two_ranks_steps(two_ranks):
    (rank0, rank1), out = two_ranks
    return (rank0["steps"], rank1["steps"]), steps(out)


def test_both_ranks_hold_identical_parameters_after_every_step(two_ranks_steps):
    (rank0, rank1), _ = two_ranks_steps
    assert rank0["params"].shape[0] == STEPS_PER_EPOCH
    for step in range(STEPS_PER_EPOCH):
        assert torch.equal(rank0["params"][step], rank1["params"][step]), step
    assert rank0["world_size"] == 2


def test_sync_bn_first_step_equals_one_process_on_the_global_batch(two_ranks_steps):
    """The loss of a global batch is the mean of the two halves' losses (equal halves),
    and DDP's averaged gradient is the gradient of that mean; with batch-norm statistics
    over the whole batch (--sync-bn) both equal one process's on the whole batch."""
    (rank0, rank1), single = two_ranks_steps
    mean_loss = (rank0["losses"][0] + rank1["losses"][0]) / 2
    assert abs(float(mean_loss) - float(single["losses"][0])) <= 1e-5
    assert torch.equal(rank0["first_grads"], rank1["first_grads"])
    scale = max(1.0, float(single["first_grads"].abs().max()))
    assert float((rank0["first_grads"] - single["first_grads"]).abs().max()) <= 1e-5 * scale


def test_sync_bn_later_steps_drift_by_rounding_only(two_ranks_steps):
    """Measured over the 4 steps: the losses agree to 1e-6, and the parameters except the
    biases of the linears that feed a batch norm to 1e-4. Those biases' true gradient is 0
    (the batch norm subtracts the mean), so theirs is rounding noise, which Adam's
    normalised step turns into moves of up to lr (1e-2): 1 process with 2 threads instead
    of 1 drifts from itself the same way."""
    (rank0, rank1), single = two_ranks_steps
    mean_losses = (rank0["losses"] + rank1["losses"]) / 2
    assert float((mean_losses - single["losses"]).abs().max()) <= 1e-5
    names = [(name, p.numel()) for name, p in tiny_spikformer(0).named_parameters()]
    cancelled = torch.cat([torch.full((n,), name.endswith("_linear.bias") and "block" in name)
                           for name, n in names])
    drift = (rank0["params"] - single["params"]).abs()
    assert float(drift[:, ~cancelled].max()) <= 1e-4
    assert float(drift[:, cancelled].max()) <= 2 * CONFIG.lr * STEPS_PER_EPOCH


def test_resume_after_a_kill_between_epochs_ends_with_the_same_weights(two_ranks):
    (rank0, rank1), _ = two_ranks
    assert torch.equal(rank0["resume"]["straight"], rank0["resume"]["resumed"])
    assert torch.equal(rank1["resume"]["resumed"], rank0["resume"]["resumed"])


def test_lottery_masks_on_two_ranks_equal_the_single_process_masks(two_ranks):
    (rank0, rank1), out = two_ranks
    lottery(out)
    two = load_masks(round_dir(out / "lottery_w2", 1) / MASK_NAME)
    one = load_masks(round_dir(out / "lottery_w1", 1) / MASK_NAME)
    assert two.keys() == one.keys()
    for name in one:
        assert torch.equal(two[name], one[name]), name
    # both ranks trained the round with the same masks (a pruned weight is exactly 0)
    assert torch.equal(rank0["lottery"]["round1_model"], rank1["lottery"]["round1_model"])
    sparsity = 1 - sum(int(m.sum()) for m in one.values()) / sum(m.numel() for m in one.values())
    assert sparsity == pytest.approx(0.25, abs=1e-3)


def test_global_batch_must_divide_over_the_ranks():
    with pytest.raises(ValueError, match="global batch size 15 does not divide over 2"):
        Shard(rank=1, world_size=2).bounds(15)
    assert Shard(rank=1, world_size=2).bounds(CONFIG.batch_size) == (8, 16)
