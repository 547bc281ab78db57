"""2D grid tokenizers for dense modalities (depth, segmentation, normals, ...).

An image-like map (B, C, H, W) becomes an (H/p) x (W/p) grid of FSQ token ids. What the map holds
(metric depth, class indices, unit normals, RGB) is chosen by the config's raw `data` kind, which
selects a codec in `codecs.py`; the network in `layers.py` is the same for all of them.
"""
from modality_tokenizers.grid.tokenizer import GridTokenizer, GridTokenizerConfig

__all__ = ["GridTokenizer", "GridTokenizerConfig"]
