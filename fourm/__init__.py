"""fourm: 4M-style any-to-any vision models with FlexTok RGB tokens, trained on DeepSpeed.

Importing fourm is cheap: torch, deepspeed and plotting libraries load inside the functions
that need them."""

__version__ = "0.1.0"
