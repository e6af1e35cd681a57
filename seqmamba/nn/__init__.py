"""Mamba mixers (real, complex), residual blocks and the LM backbone."""

from seqmamba.nn.block import Block
from seqmamba.nn.lm import MambaLMConfig, MambaLMHeadModel, MixerModel
from seqmamba.nn.mamba import ComplexMamba, Mamba, MixerCache
from seqmamba.nn.norm import RMSNorm

__all__ = ["Block", "ComplexMamba", "Mamba", "MambaLMConfig", "MambaLMHeadModel", "MixerCache", "MixerModel", "RMSNorm"]
