"""Text tokenizer: BPE over Metaspace words, trained with the HF `tokenizers` library.

Metaspace marks word starts with "▁", so decoding restores the spacing exactly (punctuation is
split into its own tokens but re-attached on decode): encode/decode round-trips a caption up to
NFKC + lowercasing.

Special tokens come first so their ids are fixed: [PAD]=0, [UNK]=1, [SOS]=2, [EOS]=3, then the
span-masking sentinels [S_0]..[S_{n-1}]. Saved as `tokenizer.json` (the HF format) beside
`tokenizer_config.json`.
"""
from __future__ import annotations

import dataclasses
import os
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from modality_tokenizers.base import ModalityTokenizer, read_tokenizer_config, register_tokenizer, write_tokenizer_config

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[SOS]", "[EOS]")
HF_FILE = "tokenizer.json"


@register_tokenizer("text")
class TextTokenizer(ModalityTokenizer):
    """BPE tokenizer for captions, with sentinels for T5-style span masking."""

    @dataclass(frozen=True)
    class Config:
        vocab_size: int = 1024  # upper bound; a small corpus may give fewer tokens
        max_tokens: int = 64  # longest id sequence the model sees, [SOS]/[EOS] included
        num_sentinels: int = 100
        lowercase: bool = True
        min_frequency: int = 1

    def __init__(self, hf_tokenizer, config: "TextTokenizer.Config"):
        self.hf = hf_tokenizer
        self.config = config
        self.pad_id, self.unk_id, self.sos_id, self.eos_id = (self.hf.token_to_id(t) for t in SPECIAL_TOKENS)
        self.max_tokens = config.max_tokens

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size()

    def sentinel_id(self, i: int) -> int:
        if not 0 <= i < self.config.num_sentinels:
            raise ValueError(f"sentinel index {i} outside 0..{self.config.num_sentinels - 1}")
        return self.hf.token_to_id(f"[S_{i}]")

    @property
    def sentinel_ids(self) -> list[int]:
        return [self.sentinel_id(i) for i in range(self.config.num_sentinels)]

    @classmethod
    def fit(cls, texts: Iterable[str], config: "TextTokenizer.Config") -> "TextTokenizer":
        """Train BPE on an iterable of strings."""
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

        hf = Tokenizer(models.BPE(unk_token="[UNK]"))
        steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if config.lowercase else [])
        hf.normalizer = normalizers.Sequence(steps)
        hf.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"), pre_tokenizers.Punctuation()]
        )
        hf.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
        specials = list(SPECIAL_TOKENS) + [f"[S_{i}]" for i in range(config.num_sentinels)]
        trainer = trainers.BpeTrainer(
            vocab_size=config.vocab_size,
            min_frequency=config.min_frequency,
            special_tokens=specials,
            initial_alphabet=list(string.ascii_letters + string.digits + string.punctuation + "▁"),
            show_progress=False,
        )
        hf.train_from_iterator(texts, trainer=trainer)
        return cls(hf, config)

    def encode_text(self, text: str, add_special: bool = False) -> list[int]:
        ids = self.hf.encode(text, add_special_tokens=False).ids
        return [self.sos_id, *ids, self.eos_id] if add_special else ids

    def encode(self, batch: Sequence[str], add_special: bool = True) -> list[list[int]]:
        """list[str] -> list of id lists ([SOS] ... [EOS]), truncated to max_tokens (keeping [EOS])."""
        out = []
        for text in batch:
            ids = self.encode_text(text, add_special=add_special)
            if len(ids) > self.max_tokens:
                ids = ids[: self.max_tokens - 1] + ([self.eos_id] if add_special else ids[self.max_tokens - 1 : self.max_tokens])
            out.append(ids)
        return out

    def decode(self, ids: Sequence[Sequence[int]], skip_special: bool = True) -> list[str]:
        """Id lists -> strings; stops at [EOS], drops [PAD]/[SOS] (and sentinels unless asked)."""
        texts = []
        for row in ids:
            row = [int(i) for i in row]
            if self.eos_id in row:
                row = row[: row.index(self.eos_id)]
            texts.append(self.hf.decode(row, skip_special_tokens=skip_special))
        return texts

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / (HF_FILE + ".tmp")
        self.hf.save(str(tmp))
        os.replace(tmp, folder / HF_FILE)
        write_tokenizer_config(folder, "text", dataclasses.asdict(self.config))

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike) -> "TextTokenizer":
        from tokenizers import Tokenizer

        type_name, config = read_tokenizer_config(folder)
        if type_name != "text":
            raise ValueError(f"{folder}: holds a '{type_name}' tokenizer, not a text tokenizer")
        path = Path(folder) / HF_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path}: tokenizer file missing")
        return cls(Tokenizer.from_file(str(path)), cls.Config(**config))
