"""The rules that make a token selector's decision a function of the image alone.

`top_tokens` is the one top-k rule of every scorer in both modes: the `n_keep` highest
scores, equal scores broken by the lowest token index. `torch.topk` leaves ties unspecified
(pytorch/pytorch#127196: they change with the tensor's length, the device and the input), so
a training-mode mask over all N tokens and an inference-mode top-k over the n gathered
survivors used to keep different tokens whenever scores tied at the boundary, which
firing-rate scores (means of small integers) often do.

`per_sample_uniforms` gives the random baseline its draws: one uniform per alive token,
seeded by (seed, selector ordinal, a hash of the sample's alive tokens). The draws follow
the sample wherever it stands in whichever batch, and are the same in training and
inference mode (the alive tokens are the same values in the same order in both: gathered in
inference, masked in training).
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

HASH_BYTES = 16   # blake2b digest size: 128 bits, collisions beyond any data set's size


def top_tokens(scores: torch.Tensor, n_keep: int) -> torch.Tensor:
    """Indices (B, n_keep), increasing, of each row's `n_keep` highest scores.

    Ties go to the lowest index: a stable descending sort keeps equal scores in index
    order (torch.sort(stable=True) guarantees it on every device). Tokens that must not be
    kept carry -inf. scores: (B, N) -> (B, n_keep) int64.
    """
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices   # (B, N)
    return order[:, :n_keep].sort(dim=1).values


def sample_key(tokens: torch.Tensor) -> int:
    """A 128-bit hash of one sample's tokens (any shape), from their float32 bit patterns.

    -0.0 is counted as 0.0 (x + 0.0), so the key depends on the values, not on how a
    device happened to produce a zero.
    """
    values = (tokens.detach().to(torch.float32) + 0.0).cpu().contiguous()
    digest = hashlib.blake2b(values.numpy().tobytes(), digest_size=HASH_BYTES).digest()
    return int.from_bytes(digest, "little")


def per_sample_uniforms(x: torch.Tensor, alive: torch.Tensor, seed: int,
                        ordinal: int) -> torch.Tensor:
    """Random scores (B, N): for sample b, uniforms in [0, 1) on its alive tokens, in their
    order, from numpy's PCG64 seeded with (seed, ordinal, hash of those tokens); -inf on
    the others. x: (T, B, N, C); alive: (B, N) of {0, 1}.
    """
    batch, tokens = x.shape[1], x.shape[2]
    scores = np.full((batch, tokens), -np.inf)
    alive_rows = alive.detach().to("cpu", torch.bool)
    for b in range(batch):
        positions = torch.nonzero(alive_rows[b]).flatten()              # increasing
        key = sample_key(x[:, b, positions.to(x.device)])               # (T, n_alive, C)
        entropy = [seed % 2**64, ordinal, key]      # SeedSequence takes non-negative ints
        draws = np.random.default_rng(entropy).random(len(positions))
        scores[b, positions.numpy()] = draws
    return torch.from_numpy(scores).to(x.device)
