"""Fit the text tokenizer on the captions of raw shards (`fourm tokenizer train --modality caption`)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from fourm.config import from_dict, load_config
from fourm.modalities import load_registry
from fourm.paths import resolve

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TextData:
    train: str  # folder (or glob) of raw shards holding the modality's text files
    max_samples: int = 0  # 0: every sample


@dataclass(frozen=True)
class TextTokenizerTrainConfig:
    """configs/tokenizers/text_*.yaml: fit a text tokenizer on one modality's captions."""

    modality: str
    model: dict[str, Any]  # {type: text, <TextTokenizer.Config fields>}
    data: TextData
    out: str


def iter_texts(shard_dir: str, modality: str, max_samples: int = 0) -> Iterator[str]:
    from fourm.shards import iter_samples, list_shards

    for i, sample in enumerate(iter_samples(list_shards(str(resolve(shard_dir))), modalities=[modality])):
        if max_samples and i >= max_samples:
            return
        yield sample[modality]


def train_text_tokenizer(config_path: str | Path, overrides: Sequence[str] = ()) -> dict[str, float]:
    """Fit, save to `out`, and report the vocabulary size and the round-trip rate on the corpus."""
    from modality_tokenizers.text import TextTokenizer

    cfg = load_config(config_path, TextTokenizerTrainConfig, overrides)
    spec = load_registry([cfg.modality])[cfg.modality]
    model_fields = {k: v for k, v in cfg.model.items() if k != "type"}
    tok_cfg = from_dict(TextTokenizer.Config, model_fields, source=str(config_path), path="model")
    texts = list(iter_texts(cfg.data.train, cfg.modality, cfg.data.max_samples))
    if not texts:
        raise ValueError(f"{config_path}: no '{cfg.modality}' texts found under {cfg.data.train}")
    tokenizer = TextTokenizer.fit(texts, tok_cfg)
    if tokenizer.vocab_size > spec.vocab_size:
        raise ValueError(f"{config_path}: tokenizer vocabulary {tokenizer.vocab_size} exceeds modality '{spec.name}' vocab_size {spec.vocab_size}")
    tokenizer.save_pretrained(cfg.out)
    metrics = fit_report(tokenizer, texts)
    log.info("text tokenizer saved to %s: %s", cfg.out, metrics)
    return metrics


def fit_report(tokenizer, texts: list[str]) -> dict[str, float]:
    """Round-trip rate (before truncation) and how many captions exceed max_tokens."""
    full = [tokenizer.encode_text(t, add_special=True) for t in texts]
    decoded = tokenizer.decode(full)
    expected = [t.lower().strip() if tokenizer.config.lowercase else t.strip() for t in texts]
    exact = sum(d == e for d, e in zip(decoded, expected)) / len(texts)
    lengths = [len(ids) for ids in full]
    metrics = {"vocab_size": tokenizer.vocab_size, "samples": len(texts), "round_trip_exact": exact,
               "max_len": max(lengths), "mean_len": sum(lengths) / len(lengths),
               "truncated_fraction": sum(n > tokenizer.max_tokens for n in lengths) / len(lengths)}
    return metrics
