"""A token selector's decision is a function of the image alone (field case bh2-02).

Not of the mode (training masks vs inference gathers), the batch size, the image's place in
its batch, or the device. Oracles: the tie rule written out with Python's sort, and the same
images decided one by one.
"""

from __future__ import annotations

import pytest
import torch
from active_model import images, small_model

from sparsespikformer.model.nn.token_ranking import top_tokens
from sparsespikformer.model.nn.token_selector import (
    TokenSelector,
    build_token_selectors,
    token_selectors_of,
)

SCORERS = ["learned", "firing_rate", "random"]
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _tied_tokens(T=2, B=8, N=16, C=4, seed=0) -> torch.Tensor:
    """(T, B, N, C) small integers, as on the residual stream: firing rates tie often."""
    return torch.randint(0, 3, (T, B, N, C), generator=torch.Generator().manual_seed(seed)
                         ).float()


def test_top_tokens_is_highest_score_then_lowest_index():
    generator = torch.Generator().manual_seed(1)
    scores = torch.randint(0, 4, (50, 12), generator=generator).double()   # many ties
    scores[scores == 3] = float("-inf")                                    # dead tokens
    for row, kept in zip(scores.tolist(), top_tokens(scores, 5).tolist(), strict=True):
        by_rule = sorted(range(12), key=lambda i: (-row[i], i))[:5]        # the rule itself
        assert kept == sorted(by_rule)


def _selector(scorer, ordinal=2, n0=16, keep_ratio=0.5, dim=4):
    torch.manual_seed(7)
    return TokenSelector(dim=dim, n_tokens0=n0, ordinal=ordinal, keep_ratio=keep_ratio,
                         scorer=scorer)


def _inference_keep(selector, x, alive_idx) -> list[list[int]]:
    """What inference keeps of the alive tokens (gathered, as the model passes them), in
    the numbering of x."""
    selector.eval()
    selector.record.kept_indices = alive_idx
    index = alive_idx[None, :, :, None].expand(x.shape[0], -1, -1, x.shape[3])
    selector(x.gather(2, index), None)
    return selector.last_kept_indices.sort(dim=1).values.tolist()


@pytest.mark.parametrize("scorer", ["firing_rate", "random"])
def test_training_mask_keeps_what_inference_gathers(scorer):
    """The case's first input: selector 2 given 8 of 16 tokens, as a mask and gathered."""
    selector = _selector(scorer)
    differ = 0
    for trial in range(100):
        x = _tied_tokens(B=4, seed=trial)
        generator = torch.Generator().manual_seed(1000 + trial)
        alive_idx = torch.stack([torch.randperm(16, generator=generator)[:8].sort().values
                                 for _ in range(4)])                           # (B, 8)
        alive = torch.zeros(4, 16).scatter_(1, alive_idx, 1.0)
        selector.train()
        mask = selector(x, alive)[1]
        trained = [torch.nonzero(row).flatten().tolist() for row in mask]
        differ += trained != _inference_keep(selector, x, alive_idx)
    assert differ == 0


@pytest.mark.parametrize("scorer", SCORERS)
def test_equal_tokens_keep_the_lowest_index(scorer):
    """Identical tokens score identically under every scorer but random: the rule decides."""
    x = torch.ones(2, 1, 16, 4)                     # every token the same
    selector = _selector(scorer, ordinal=1).eval()  # keeps 8 of 16
    selector(x, None)
    if scorer == "random":                          # one draw per token, not a tie
        assert selector.last_kept_indices.shape == (1, 8)
    else:
        assert selector.last_kept_indices.tolist() == [list(range(8))]


def _decisions(selector, x, batch_size, order=None) -> torch.Tensor:
    """Kept original indices (B, n_keep) per image, the images run in batches of
    `batch_size`, in `order` (a permutation) if given."""
    order = torch.arange(x.shape[1]) if order is None else order
    kept = torch.empty(x.shape[1], selector.n_keep, dtype=torch.long)
    selector.eval()
    for chunk in order.split(batch_size):
        selector(x[:, chunk], None)
        kept[chunk] = selector.last_kept_indices
    return kept


@pytest.mark.parametrize("scorer", SCORERS)
def test_selector_decision_ignores_batch_size_and_position(scorer):
    x = _tied_tokens(B=256, N=16, C=8, seed=3)
    selector = _selector(scorer, ordinal=1, dim=8)
    one_by_one = _decisions(selector, x, 1)
    assert torch.equal(_decisions(selector, x, 16), one_by_one)
    assert torch.equal(_decisions(selector, x, 256), one_by_one)
    shuffled = torch.randperm(256, generator=torch.Generator().manual_seed(5))
    assert torch.equal(_decisions(selector, x, 16, order=shuffled), one_by_one)
    assert torch.equal(_decisions(selector, x, 256, order=shuffled), one_by_one)


def test_random_draws_follow_the_image_and_the_seed():
    x = _tied_tokens(B=64, N=16, C=8, seed=4)

    def kept(seed):
        return _decisions(TokenSelector(8, 16, 1, 0.5, scorer="random", seed=seed), x, 64)

    assert torch.equal(kept(0), kept(0))                         # a fresh selector: the same
    assert (kept(0) != kept(1)).any(dim=1).float().mean() > 0.9  # another seed: other draws
    assert len({tuple(row) for row in kept(0).tolist()}) > 60    # each image its own draw


def test_random_baseline_keeps_every_token_equally_often():
    """Over 2000 images each of 16 tokens is kept with probability 1/2: 1000 ± 3.5 sigma."""
    x = torch.randint(0, 2, (1, 2000, 16, 4), generator=torch.Generator().manual_seed(6)
                      ).float()
    kept = _decisions(TokenSelector(4, 16, 1, 0.5, scorer="random"), x, 500)
    counts = torch.zeros(16).scatter_add_(0, kept.flatten(), torch.ones(kept.numel()))
    assert ((counts - 1000).abs() < 3.5 * 22.4).all(), counts     # sigma = sqrt(2000/4)


# ---------------------------------------------------------------- whole model

def _model(scorer):
    model = small_model(seed=1)          # spikes at moderate rates: rates tie, not all zero
    model.token_selectors = build_token_selectors(32, 64, blocks=(1,), keep_ratio=0.7,
                                                  scorer=scorer)
    return model.eval()


def _model_decisions(model, inputs, batch_size, order=None):
    order = torch.arange(len(inputs)) if order is None else order
    (selector,) = token_selectors_of(model)
    kept = torch.empty(len(inputs), selector.n_keep, dtype=torch.long)
    logits = torch.empty(len(inputs), 10)
    with torch.no_grad():
        for chunk in order.split(batch_size):
            logits[chunk] = model(inputs[chunk])
            kept[chunk] = selector.last_kept_indices
    return kept, logits


@pytest.mark.parametrize("scorer", SCORERS)
def test_model_decision_ignores_batch_size_and_order(scorer):
    model, inputs = _model(scorer), images(count=48, seed=9)
    kept, logits = _model_decisions(model, inputs, 1)
    for batch_size in (16, 48):
        shuffled = torch.randperm(48, generator=torch.Generator().manual_seed(batch_size))
        other, other_logits = _model_decisions(model, inputs, batch_size, order=shuffled)
        assert torch.equal(other, kept)
        torch.testing.assert_close(other_logits, logits, rtol=0, atol=1e-5)


@pytest.mark.parametrize("scorer", ["firing_rate", "random"])
def test_model_with_selectors_in_training_mode_is_the_evaluated_model(scorer):
    """The case's second input: only the selectors in training mode (masks; BatchNorm in
    eval) against inference (gathers): the same kept tokens, the same logits."""
    model, inputs = _model(scorer), images(count=32, seed=11)
    (selector,) = token_selectors_of(model)
    with torch.no_grad():
        gathered = model(inputs)
        kept = torch.zeros(32, 64).scatter_(1, selector.last_kept_indices, 1.0)
        selector.train()
        masked = model(inputs)
    assert torch.equal(selector.last_keep_mask, kept)
    torch.testing.assert_close(masked, gathered, rtol=0, atol=1e-5)


@CUDA
@pytest.mark.parametrize("scorer", SCORERS)
def test_decision_is_the_same_on_cuda(scorer):
    model, inputs = _model(scorer), images(count=16, seed=12)
    kept_cpu, _ = _model_decisions(model, inputs, 16)
    kept_gpu, _ = _model_decisions(model.to("cuda"), inputs.to("cuda"), 16)
    assert torch.equal(kept_gpu.cpu(), kept_cpu)
