"""Quantisers shared by the neural tokenizers."""
from modality_tokenizers.quantizers.fsq import FSQ

__all__ = ["FSQ"]
