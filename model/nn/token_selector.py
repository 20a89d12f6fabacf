"""The spiking token selector of SparseSpikformer (Liu et al., ICASSP 2024;
docs/references.md).

A selector sits before a transformer block and decides which tokens go on.
The k-th selector of a model keeps `int(N0 · ρ^k)` tokens, N0 being the token
count before the first selector and ρ the keep ratio, so the kept fractions are
cumulative: ρ, ρ², ρ³. A token dropped by one selector never comes back.

Two modes, chosen by `self.training`:
* training: every token stays in the tensor; the selector returns a keep mask
  (B, N) of {0, 1} that the blocks multiply into K and V, so dropped tokens
  contribute nothing to attention. The learned scorer draws hard Gumbel-softmax
  decisions (straight-through, so the MLP gets gradients); the parameter-free
  scorers take a hard top-k.
* inference: the kept tokens are gathered out of the tensor (token order kept),
  so every later layer runs on fewer tokens; the returned mask is None.

Scorers: `learned` (MLP D → D/2 → 2 with log-softmax on each token's
time-averaged spikes, i.e. its firing rates per channel), `firing_rate` (no
parameters: a token's mean activity over time and channels) and `random` (the
baseline).

What a selector keeps is a function of the image alone (`token_ranking`): one top-k
rule, ties to the lowest token index, in both modes; scores computed per sample, so
neither the batch size, nor the sample's place in its batch, nor the device matters:
scores are computed on the CPU from the device's tensors (firing rates as exact sums of
the integer residual stream; the learned MLP in float64 one sample at a time; the random
baseline's draws seeded by a hash of the sample's tokens). Hence the parameter-free
scorers' training masks keep exactly the tokens inference gathers. The learned scorer's
training-mode decision is different by design: a Gumbel-softmax sample (the paper's
training method, noise from the global generator); its inference decision follows the
rule.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from sparsespikformer.model.nn.token_ranking import per_sample_uniforms, top_tokens
from sparsespikformer.simulator.errors import InputError
from sparsespikformer.simulator.tokens import kept_token_count

SCORERS = ("learned", "firing_rate", "random")
KEEP = 0          # channel of the learned scorer's output that means "keep"

class SelectionRecord:
    """Original indices of the tokens still alive, shared by the selectors of one model.

    Each selector, in forward order, reads the indices its predecessor left and
    writes its own, so `last_kept_indices` is in the numbering of the input
    image's tokens even after several gathers. Not a module: it has no state
    worth saving.
    """

    def __init__(self) -> None:
        self.kept_indices: torch.Tensor | None = None    # (B, n_alive)


def _check_selector_args(dim: int, n_tokens0: int, ordinal: int, keep_ratio: float,
                         scorer: str) -> None:
    if scorer not in SCORERS:
        raise InputError(f"scorer must be one of {SCORERS}, got '{scorer}'")
    if not 0.0 < keep_ratio <= 1.0:
        raise InputError(f"keep_ratio must be in (0, 1], got {keep_ratio}")
    if ordinal < 1:
        raise InputError(f"selector ordinal must be >= 1, got {ordinal}")
    if n_tokens0 < 1 or dim < 2:
        raise InputError(f"selector needs n_tokens0 >= 1 and dim >= 2, got {n_tokens0}, {dim}")


class TokenSelector(nn.Module):
    """Keeps the `int(N0 · ρ^ordinal)` best-scoring tokens of a (T, B, N, C) tensor."""

    def __init__(self, dim: int, n_tokens0: int, ordinal: int, keep_ratio: float,
                 scorer: str = "learned", seed: int = 0, gumbel_tau: float = 1.0,
                 record: SelectionRecord | None = None) -> None:
        super().__init__()
        _check_selector_args(dim, n_tokens0, ordinal, keep_ratio, scorer)
        self.dim = dim
        self.n_tokens0 = n_tokens0
        self.ordinal = ordinal
        self.keep_ratio = keep_ratio
        self.scorer = scorer
        self.seed = seed
        self.gumbel_tau = gumbel_tau
        self.record = record if record is not None else SelectionRecord()
        self.n_keep = kept_token_count(n_tokens0, keep_ratio, ordinal)
        self.target_keep_fraction = keep_ratio ** ordinal
        self.mlp = self._build_mlp(dim, keep_ratio) if scorer == "learned" else None
        self.last_kept_indices: torch.Tensor | None = None    # (B, n_keep) original numbering
        self.last_keep_mask: torch.Tensor | None = None       # (B, N) training mode
        self.last_kept_fraction: torch.Tensor | None = None   # (B,) kept / N0, differentiable

    @staticmethod
    def _build_mlp(dim: int, keep_ratio: float) -> nn.Sequential:
        mlp = nn.Sequential(nn.Linear(dim, dim // 2), nn.GELU(), nn.Linear(dim // 2, 2))
        # start near the target: each selector keeps a fraction ρ of what reaches it
        with torch.no_grad():
            p_keep = min(max(keep_ratio, 1e-3), 1 - 1e-3)
            mlp[2].bias.copy_(torch.tensor([math.log(p_keep), math.log(1 - p_keep)]))
        return mlp

    def extra_repr(self) -> str:
        return (f"scorer={self.scorer}, ordinal={self.ordinal}, keep_ratio={self.keep_ratio}, "
                f"n_tokens0={self.n_tokens0}, n_keep={self.n_keep}")

    # ---- scoring -------------------------------------------------------------------
    def keep_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Learned scorer: log-probabilities (B, N, 2) of keep / drop per token."""
        rates = x.mean(dim=0)                                  # (B, N, C) time-averaged spikes
        return F.log_softmax(self.mlp(rates), dim=-1)          # (B, N, 2)

    @torch.no_grad()
    def scores(self, x: torch.Tensor, alive: torch.Tensor | None = None) -> torch.Tensor:
        """Score (B, N) per token, higher kept first, -inf where `alive` (B, N) is 0.

        A function of each sample's tokens alone, computed on the CPU (float64) from the
        device's tensors, so the decision does not depend on the batch or the device.
        Returned on the CPU; on the meta device (shape-only passes) an empty meta tensor.
        """
        alive = self._alive(x, alive)
        if x.is_meta:
            if self.mlp is not None:     # the MLP's shapes for gflops and layer tables
                self.mlp(x.mean(dim=0))
            return torch.empty(alive.shape, device="meta")
        if self.scorer == "learned":
            scores = self._learned_scores(x)
        elif self.scorer == "firing_rate":
            # Σ over T and C: exact in float32 for the residual stream's small integers
            # (below 2**24), on any device, so equal rates tie exactly; the mean orders
            # tokens as the sum does.
            total = x.sum(dim=(0, 3), dtype=torch.float32).to("cpu", torch.float64)
            scores = total / (x.shape[0] * x.shape[3])
        else:
            scores = per_sample_uniforms(x, alive, self.seed, self.ordinal)
        return scores.masked_fill(alive.to("cpu") == 0, float("-inf"))

    def _learned_scores(self, x: torch.Tensor) -> torch.Tensor:
        """log p(keep) (B, N) in float64 on the CPU, one sample at a time: the same
        arithmetic for every batch size and device. Calls the MLP modules, so the trace
        recorder and gflops see (and count) it, one sample per call."""
        rates = x.mean(dim=0).to("cpu", torch.float64)        # (B, N, C) time-averaged
        params = {name: p.detach().to("cpu", torch.float64)
                  for name, p in self.mlp.named_parameters()}
        rows = [functional_call(self.mlp, params, (sample[None],))   # (1, N, 2)
                for sample in rates]
        return F.log_softmax(torch.cat(rows), dim=-1)[..., KEEP]     # (B, N)

    # ---- forward -------------------------------------------------------------------
    def forward(self, x: torch.Tensor, keep_mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # x: (T, B, N, C); keep_mask: (B, N) of {0, 1} or None
        if self.training:
            return x, self._training_mask(x, keep_mask)
        return self._gather_kept(x, keep_mask), None

    def _alive(self, x: torch.Tensor, keep_mask: torch.Tensor | None) -> torch.Tensor:
        if keep_mask is None:
            return torch.ones(x.shape[1], x.shape[2], dtype=x.dtype, device=x.device)
        return keep_mask.to(x.dtype)                           # (B, N)

    def _training_mask(self, x: torch.Tensor, keep_mask: torch.Tensor | None) -> torch.Tensor:
        alive = self._alive(x, keep_mask)                      # (B, N)
        if self.scorer == "learned":
            log_probs = self.keep_log_probs(x)                 # (B, N, 2)
            decision = F.gumbel_softmax(log_probs, tau=self.gumbel_tau, hard=True)[..., KEEP]
            mask = alive * decision                            # cumulative: dropped stays dropped
        else:
            top = self._decide(x, alive)                       # (B, n_keep), as inference
            mask = torch.zeros_like(alive).scatter_(1, top, 1.0) * alive
        self.last_keep_mask = mask.detach()
        self.last_kept_fraction = mask.sum(dim=1) / self.n_tokens0
        self.last_kept_indices = None
        return mask

    @torch.no_grad()
    def _decide(self, x: torch.Tensor, keep_mask: torch.Tensor | None) -> torch.Tensor:
        """Local indices (B, n_keep), increasing, of the tokens to keep: `top_tokens`."""
        top = top_tokens(self.scores(x, keep_mask), min(self.n_keep, x.shape[2]))
        return top.to(x.device)

    def _gather_kept(self, x: torch.Tensor, keep_mask: torch.Tensor | None) -> torch.Tensor:
        T, B, N, C = x.shape
        local = self._decide(x, keep_mask)                     # (B, n_keep) into this input
        index = local[None, :, :, None].expand(T, B, local.shape[1], C)
        kept = x.gather(2, index)                              # (T, B, n_keep, C)
        self._record_original_indices(local, B, N, x.device)
        self.last_keep_mask = None
        self.last_kept_fraction = torch.full((B,), local.shape[1] / self.n_tokens0)
        return kept

    def _record_original_indices(self, local: torch.Tensor, batch: int, n_in: int,
                                 device: torch.device) -> None:
        previous = self.record.kept_indices
        if self.ordinal == 1 or previous is None or tuple(previous.shape) != (batch, n_in):
            previous = torch.arange(n_in, device=device).expand(batch, n_in)
        original = previous.gather(1, local)                   # (B, n_keep)
        self.record.kept_indices = original
        self.last_kept_indices = original

def build_token_selectors(dim: int, n_tokens0: int, blocks: tuple[int, ...],
                          keep_ratio: float, scorer: str = "learned", seed: int = 0,
                          gumbel_tau: float = 1.0) -> nn.ModuleDict:
    """Selectors keyed by block index (str), the k-th in `blocks` order keeping N0 · ρ^k."""
    if len(set(blocks)) != len(blocks) or list(blocks) != sorted(blocks):
        raise InputError(f"selector blocks must be increasing and distinct, got {blocks}")
    record = SelectionRecord()
    return nn.ModuleDict({
        str(block): TokenSelector(dim, n_tokens0, ordinal, keep_ratio, scorer=scorer,
                                  seed=seed, gumbel_tau=gumbel_tau, record=record)
        for ordinal, block in enumerate(blocks, start=1)
    })


def token_selectors_of(model: nn.Module) -> list[TokenSelector]:
    """The model's selectors in forward order (empty for a dense model)."""
    selectors = [m for m in model.modules() if isinstance(m, TokenSelector)]
    return sorted(selectors, key=lambda s: s.ordinal)
