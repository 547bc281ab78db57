"""FlexTok, the RGB tokenizer: images <-> ordered, coarse-to-fine 1D token sequences.

    from modality_tokenizers.flextok import FlexTok, preset
    tok = FlexTok(preset("tiny"))
    tokens = tok.tokenize(images)                 # list of (R,) int64, truncate to any 1..R
    images = tok.detokenize([t[:4] for t in tokens], steps=25, guidance_scale=2.0)
"""
from modality_tokenizers.flextok.config import PRESETS, FlexTokConfig, preset
from modality_tokenizers.flextok.model import FlexTok
from modality_tokenizers.flextok.vae import KLAutoencoder  # registers "kl_vae"

__all__ = ["FlexTok", "FlexTokConfig", "KLAutoencoder", "PRESETS", "preset"]
