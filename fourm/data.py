"""Token shards -> masked, padded batches: a deterministic, resumable stream per rank.

    stream = TokenStream(config, specs, masker, text_tokenizers, rank=r, world_size=w, start_batch=k)
    loader = make_loader(stream, num_workers=2)            # yields {name: ModalityTokens}

Token shards hold `<key>.tok_<name>.npy` (grids: `max_tokens` ids; image_seq: 1..max_tokens, a prefix) and
`<key>.<name>.txt` (text, tokenized here so span masking sees words); see
`ModalitySpec.token_ext`.

Determinism and resume: the samples of rank r form one stream fixed by (seed, rank): per shard
set, epoch e visits the shards in an order drawn from (seed, set, e) through a seeded shuffle
buffer, and the sets are interleaved by a seeded mixture draw. Batch g of the rank is samples
[g*B, (g+1)*B) of that stream, masked with a generator seeded from (seed, rank, g). A batch is
therefore a function of its index alone: any number of DataLoader workers give the same batches
in the same order, and resuming at batch k (the number of batches consumed, saved in the
checkpoint) replays the stream to sample k*B without masking it, then continues, so nothing is
repeated or skipped.

Each rank reads its own part: whole shards when there are at least as many shards as ranks,
else every world_size-th sample. DataLoader workers split the masking and collation (worker w
makes every num_workers-th batch) but each reads the rank's whole stream: token files are small,
masking is the work worth spreading. Resuming replays the stream from the start of the run,
which is cheap for token shards (no masking), but grows with the run: fine for the runs here.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np
import torch

from fourm.masking import Masker, MaskedSample, TextSpecials, collate
from fourm.modalities import ModalitySpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardSet:
    """shards: a folder of *.tar, a glob, a brace range ('dir/shard-{0000..0009}.tar')."""

    shards: str
    weight: float = 1.0
    name: str = ""


@dataclass(frozen=True)
class Direction:
    """A fixed validation task: all tokens of `inputs` in, all of `targets` out (inputs may be empty)."""

    inputs: tuple[str, ...]
    targets: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{'+'.join(self.inputs) or 'none'}->{'+'.join(self.targets)}"


@dataclass(frozen=True)
class DataConfig:
    """train / val: shard sets (train sets are mixed by weight; val is read once, in order).
    batch_size: per rank and micro-step. shuffle_buffer: samples. num_workers: loader processes.
    masking: YAML of a MaskingConfig. text_tokenizers: modality -> tokenizer folder (default: the
    modality spec's `tokenizer`). val_samples: how many held-out samples to evaluate.
    val_directions: fixed input->target tasks evaluated on the held-out samples."""

    train: tuple[ShardSet, ...]
    val: tuple[ShardSet, ...] = ()
    batch_size: int = 8
    shuffle_buffer: int = 256
    num_workers: int = 0
    masking: str = "configs/masking/default.yaml"
    text_tokenizers: dict[str, str] = field(default_factory=dict)
    val_samples: int = 128
    val_batch_size: int = 32
    val_directions: tuple[Direction, ...] = ()
    on_error: str = "skip"

    def __post_init__(self) -> None:
        if not self.train:
            raise ValueError("train: needs at least one shard set")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', got {self.on_error!r}")


# ----------------------------------------------------------------------------- seeds

def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (stable across processes and Python versions)."""
    seq = np.random.SeedSequence([int(p) % 2**63 for p in parts])
    return int(seq.generate_state(2, dtype=np.uint32).astype(np.uint64).dot([1, 2**31]))


def generator(*parts: int) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(*parts))


# ----------------------------------------------------------------------------- reading samples

def shard_key(spec: ModalitySpec) -> str:
    """The name `fourm.shards` gives this modality's file: 'tok_rgb', 'caption'."""
    return spec.token_ext.rsplit(".", 1)[0]


class SampleReader:
    """Token-shard samples -> {modality: ids} (text tokenized), unmasked."""

    def __init__(self, specs: Sequence[ModalitySpec], text_tokenizers: Mapping[str, Any], on_error: str = "skip"):
        self.specs = list(specs)
        self.text_tokenizers = dict(text_tokenizers)
        self.on_error = on_error
        for spec in self.specs:
            if spec.kind == "text" and spec.name not in self.text_tokenizers:
                raise ValueError(f"text modality '{spec.name}' needs a text tokenizer")

    def samples(self, shards: Sequence[str], keep: Optional[tuple[int, int]] = None) -> Iterator[dict]:
        """Samples of `shards` in order; keep=(i, n) keeps every n-th sample starting at i."""
        from fourm.shards import iter_samples

        for count, raw in enumerate(iter_samples(shards, modalities=None, on_error=self.on_error, image_size=None)):
            if keep is None or count % keep[1] == keep[0]:
                yield self.tokens(raw)

    def tokens(self, raw: Mapping[str, Any]) -> dict:
        out = {"__key__": raw.get("__key__", "")}
        for spec in self.specs:
            value = raw.get(shard_key(spec))
            if value is None:
                continue  # missing modality: the masker leaves it out of this sample
            if spec.kind == "text":
                text = value if isinstance(value, str) else str(value)
                value = self.text_tokenizers[spec.name].encode_text(text.strip()) if text.strip() else []
            out[spec.name] = value
        return out


# ----------------------------------------------------------------------------- the stream

def _shuffle(samples: Iterator[dict], buffer_size: int, gen: torch.Generator) -> Iterator[dict]:
    """Seeded shuffle buffer: keep `buffer_size` samples, emit a random one as each new one arrives."""
    buffer: list[dict] = []
    for sample in samples:
        if len(buffer) < buffer_size:
            buffer.append(sample)
            continue
        i = int(torch.randint(len(buffer), (1,), generator=gen))
        buffer[i], sample = sample, buffer[i]
        yield sample
    while buffer:
        yield buffer.pop(int(torch.randint(len(buffer), (1,), generator=gen)))


class TokenStream(torch.utils.data.IterableDataset):
    """The masked batches of one rank, from batch `start_batch` on, forever."""

    def __init__(self, config: DataConfig, specs: Sequence[ModalitySpec], masker: Masker,
                 text_tokenizers: Mapping[str, Any], seed: int, rank: int = 0, world_size: int = 1,
                 start_batch: int = 0):
        super().__init__()
        from fourm.shards import list_shards

        self.config = config
        self.names = [s.name for s in specs]
        self.reader = SampleReader(specs, text_tokenizers, config.on_error)
        self.masker = masker
        self.seed, self.rank, self.world_size, self.start_batch = seed, rank, world_size, start_batch
        self.shard_lists = [list_shards(s.shards) for s in config.train]
        self.weights = torch.tensor([s.weight for s in config.train], dtype=torch.float64)

    def _set_samples(self, index: int) -> Iterator[dict]:
        """This rank's samples of shard set `index`, epoch after epoch, shuffled."""
        shards = self.shard_lists[index]
        epoch = 0
        while True:
            order = torch.randperm(len(shards), generator=generator(self.seed, 1, index, epoch)).tolist()
            ordered = [shards[i] for i in order]
            if len(shards) >= self.world_size:
                part, keep = ordered[self.rank:: self.world_size], None
            else:
                part, keep = ordered, (self.rank, self.world_size)
            count = 0
            shuffle_gen = generator(self.seed, 2, index, epoch, self.rank)
            for sample in _shuffle(self.reader.samples(part, keep), self.config.shuffle_buffer, shuffle_gen):
                count += 1
                yield sample
            if count == 0:
                raise RuntimeError(f"shard set {self.config.train[index].shards}: rank {self.rank} read no samples in epoch {epoch}")
            epoch += 1

    def samples(self) -> Iterator[dict]:
        """This rank's sample stream: the shard sets interleaved by mixture weight."""
        streams = [self._set_samples(i) for i in range(len(self.shard_lists))]
        if len(streams) == 1:
            yield from streams[0]
            return
        mix_gen = generator(self.seed, 3, self.rank)
        while True:
            yield next(streams[int(torch.multinomial(self.weights, 1, generator=mix_gen))])

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info else (0, 1)
        B = self.config.batch_size
        stream = self.samples()
        for _ in range(self.start_batch * B):  # replay what earlier runs consumed
            next(stream)
        index = self.start_batch
        while True:
            raw = [next(stream) for _ in range(B)]
            if (index - self.start_batch) % num_workers == worker:
                yield self.mask_batch(raw, index)
            index += 1

    def mask_batch(self, raw: Sequence[dict], index: int) -> dict:
        gen = generator(self.seed, 4, self.rank, index)
        masked = [self.masker(sample, gen) for sample in raw]
        return collate(masked, self.names)


def make_loader(stream: TokenStream, num_workers: int = 0) -> torch.utils.data.DataLoader:
    """A DataLoader over a TokenStream (batches are made in the stream; workers keep their order)."""
    return torch.utils.data.DataLoader(stream, batch_size=None, num_workers=num_workers,
                                       persistent_workers=False, prefetch_factor=2 if num_workers else None)


# ----------------------------------------------------------------------------- validation

def validation_batches(config: DataConfig, specs: Sequence[ModalitySpec], masker: Masker,
                       text_tokenizers: Mapping[str, Any], seed: int) -> dict[str, list[dict]]:
    """Fixed held-out batches: 'mixed' (the training masking, seeded) and one list per direction.
    A direction skips samples that lack one of its modalities."""
    from fourm.shards import list_shards

    reader = SampleReader(specs, text_tokenizers, config.on_error)
    shards = [p for s in config.val for p in list_shards(s.shards)]
    raw = []
    for sample in reader.samples(shards):
        raw.append(sample)
        if len(raw) >= config.val_samples:
            break
    names = [s.name for s in specs]
    B = config.val_batch_size
    gen = generator(seed, 5)
    out = {"mixed": [collate([masker(s, gen) for s in raw[i: i + B]], names) for i in range(0, len(raw), B)]}
    for direction in config.val_directions:
        masked = [m for m in (masker.direction(s, direction.inputs, direction.targets) for s in raw) if m is not None]
        out[direction.name] = [collate(masked[i: i + B], names) for i in range(0, len(masked), B)]
    return out


# ----------------------------------------------------------------------------- building from config

def load_text_tokenizers(config: DataConfig, specs: Sequence[ModalitySpec]) -> dict[str, Any]:
    from modality_tokenizers.text import TextTokenizer
    from fourm.paths import resolve

    out = {}
    for spec in specs:
        if spec.kind == "text":
            folder = config.text_tokenizers.get(spec.name, spec.tokenizer)
            out[spec.name] = TextTokenizer.from_pretrained(resolve(folder))
    return out


def build_masker(config: DataConfig, specs: Sequence[ModalitySpec], text_tokenizers: Mapping[str, Any]) -> Masker:
    from fourm.masking import load_masking_config
    from fourm.paths import resolve

    path = resolve(config.masking)
    specials = {name: TextSpecials.from_tokenizer(tok) for name, tok in text_tokenizers.items()}
    return Masker(load_masking_config(path), specs, specials, source=str(path))


# ----------------------------------------------------------------------------- synthetic shards (tests, smoke runs)

COLOURS, SHAPES, PLACES = ("red", "green", "blue", "yellow"), ("cube", "sphere", "cylinder", "cone"), ("left of", "right of")


def synthetic_specs(rgb_tokens: int = 32, grid: int = 4, vocab: int = 256) -> list[ModalitySpec]:
    """Small stand-ins for the scenes modalities (same kinds and names)."""
    n = grid * grid
    return [
        ModalitySpec("rgb", "image_seq", "image_rgb", vocab, rgb_tokens, "rgb.png", ""),
        ModalitySpec("depth", "image_grid", "depth_map", vocab, n, "depth.npy", "", grid_size=(grid, grid)),
        ModalitySpec("semseg", "image_grid", "class_map", vocab, n, "semseg.png", "", grid_size=(grid, grid)),
        ModalitySpec("caption", "text", "text", 256, 24, "caption.txt", ""),
    ]


def synthetic_caption(scene: int) -> str:
    """A caption that names the sample's scene id (0..15), so caption->rgb is learnable."""
    return f"a {COLOURS[scene % 4]} {SHAPES[scene // 4 % 4]} {PLACES[scene // 16 % 2]} the camera"


def synthetic_text_tokenizer(vocab_size: int = 256, max_tokens: int = 24):
    """A real TextTokenizer fitted on synthetic captions (16 sentinels)."""
    from modality_tokenizers.text import TextTokenizer

    texts = [synthetic_caption(scene) for scene in range(32)]
    config = TextTokenizer.Config(vocab_size=vocab_size, max_tokens=max_tokens, num_sentinels=16)
    return TextTokenizer.fit(texts, config)


def write_synthetic_token_shards(folder: str | os.PathLike, specs: Sequence[ModalitySpec], num_shards: int = 2,
                                 samples_per_shard: int = 16, seed: int = 0, scenes: int = 16) -> list[str]:
    """Random token shards of the right shapes (+ short captions). Each sample has a scene id; every
    image token is (scene id, modality) plus one random bit, and the caption names the scene, so
    X->Y losses can fall to ln 2 while predicting from no input stays near ln(2 * scenes)."""
    from fourm.shards import write_shard_atomic

    gen = np.random.default_rng(seed)
    paths = []
    for s in range(num_shards):
        samples = []
        for i in range(samples_per_shard):
            sample = {"__key__": f"synth_{s:03d}_{i:05d}"}
            scene = int(gen.integers(0, scenes))
            for m, spec in enumerate(specs):
                if spec.kind == "text":
                    sample[spec.token_ext] = synthetic_caption(scene)
                else:
                    noise = gen.integers(0, 2, size=spec.max_tokens)
                    sample[spec.token_ext] = ((2 * scene + 2 * scenes * m + noise) % spec.vocab_size).astype(np.int32)
            samples.append(sample)
        path = os.path.join(str(folder), f"tokens-{s:06d}.tar")
        write_shard_atomic(path, samples)
        paths.append(path)
    return paths
