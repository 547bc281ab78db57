"""Modality tokenizers: one per modality, all behind the protocol in `modality_tokenizers.base`.
Importing this package registers the built-in tokenizer types for `load_tokenizer`."""
from modality_tokenizers.base import TOKENIZER_TYPES, load_tokenizer, register_tokenizer
from modality_tokenizers import text  # noqa: F401  (registers "text")
from modality_tokenizers import grid  # noqa: F401  (registers "grid")
from modality_tokenizers import flextok  # noqa: F401  (registers "flextok", "kl_vae")
from modality_tokenizers import patches  # noqa: F401  (registers "pixel_patches")
from modality_tokenizers import centres  # noqa: F401  (registers "object_centres")

__all__ = ["TOKENIZER_TYPES", "load_tokenizer", "register_tokenizer"]
