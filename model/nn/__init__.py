"""Spikformer's building blocks in PyTorch, exactly as the reference code (ZK-Zhou/spikformer)
builds them: the multi-step LIF neuron, spiking patch splitting (SPS), spiking self-attention,
the MLP, the block, the whole `Spikformer`, the spiking token selector and GFLOPs counting."""

from sparsespikformer.model.nn.config import SpikformerConfig
from sparsespikformer.model.nn.flops import count_macs, gflops
from sparsespikformer.model.nn.lif import LIF, lif_multistep
from sparsespikformer.model.nn.spikformer import Spikformer
from sparsespikformer.model.nn.token_selector import TokenSelector, kept_token_count

__all__ = ["LIF", "Spikformer", "SpikformerConfig", "TokenSelector", "count_macs", "gflops",
           "kept_token_count", "lif_multistep"]
