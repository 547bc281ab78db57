"""Multimodal masking: which tokens of a sample the encoder sees and which the decoder predicts.

Per sample (all randomness from one `torch.Generator`):

1. pick a mixture component (e.g. all-to-all, rgb-to-all) by its weight;
2. draw a total input budget and a total target budget (uniform in the configured ranges);
3. split each budget across the sample's modalities with a Dirichlet(alpha) draw (alpha from
   the component; alpha 0 or absent = never in that role), capped by each modality's tokens;
   the target split is capped by the tokens not already taken as input, so no token is ever
   both input and target;
4. choose the tokens, by kind:
   - image_grid: a random subset for inputs, a random disjoint subset for targets;
   - image_seq (FlexTok, ordered coarse to fine): inputs a random subset; targets a random
     subset, or with probability `seq_prefix_prob` the first k tokens (k a random power of
     two within the target count) minus the inputs, so the model learns to produce prefixes;
   - text: T5-style span masking when the text has both roles (input: the text with each
     masked span replaced by a sentinel; target: sentinel, span, sentinel, span, ..., [EOS],
     decoded causally), the whole text when it has one role (target: [S_0] text [EOS]);
   - image_patches (pixel patches, (N, values) per sample): inputs only, like image_grid inputs;
     target alphas of this kind are 0 ('*' skips it, naming it is an error).

Text budgets are approximate (sentinels and [EOS] add a few tokens); image budgets are exact.
A modality missing from a sample, or an empty caption, simply takes no part for that sample.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np
import torch

from fourm.config import ConfigError, load_config
from fourm.modalities import ModalitySpec

ALL = "*"  # in alpha tables: every modality not named explicitly


@dataclass(frozen=True)
class MixtureComponent:
    """One Dirichlet setting. Alphas map modality name (or '*' for the rest) to alpha >= 0.
    input_tokens / target_tokens: this component's own [min, max] budgets (None: the config's)."""

    name: str
    input_alphas: dict[str, float]
    target_alphas: dict[str, float]
    weight: float = 1.0
    input_tokens: Optional[tuple[int, int]] = None
    target_tokens: Optional[tuple[int, int]] = None


@dataclass(frozen=True)
class MaskingConfig:
    """input_tokens / target_tokens: [min, max] total budget per sample (inclusive).
    mixture: the Dirichlet settings, chosen per sample by weight.
    seq_prefix_prob: chance that an image_seq target is a power-of-two prefix.
    text_mean_span: mean length of a masked text span."""

    input_tokens: tuple[int, int]
    target_tokens: tuple[int, int]
    mixture: tuple[MixtureComponent, ...]
    seq_prefix_prob: float = 0.5
    text_mean_span: float = 3.0

    def __post_init__(self) -> None:
        budgets = [(key, getattr(self, key)) for key in ("input_tokens", "target_tokens")]
        budgets += [(f"mixture '{c.name}': {key}", getattr(c, key)) for c in self.mixture
                    for key in ("input_tokens", "target_tokens") if getattr(c, key) is not None]
        for key, (lo, hi) in budgets:
            if not 0 <= lo <= hi:
                raise ValueError(f"{key}: need 0 <= min <= max, got [{lo}, {hi}]")
        if not self.mixture:
            raise ValueError("mixture: needs at least one component")
        if not 0.0 <= self.seq_prefix_prob <= 1.0:
            raise ValueError(f"seq_prefix_prob: {self.seq_prefix_prob} is not in [0, 1]")
        if self.text_mean_span < 1.0:
            raise ValueError(f"text_mean_span: must be >= 1, got {self.text_mean_span}")
        for comp in self.mixture:
            if comp.weight < 0:
                raise ValueError(f"mixture '{comp.name}': weight must be >= 0")
            for table in (comp.input_alphas, comp.target_alphas):
                if any(a < 0 for a in table.values()):
                    raise ValueError(f"mixture '{comp.name}': alphas must be >= 0")


def load_masking_config(path, overrides: Sequence[str] = ()) -> MaskingConfig:
    return load_config(path, MaskingConfig, overrides)


@dataclass(frozen=True)
class TextSpecials:
    """Token ids span masking needs from a text tokenizer."""

    eos_id: int
    sentinel_ids: tuple[int, ...]

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "TextSpecials":
        return cls(tokenizer.eos_id, tuple(tokenizer.sentinel_ids))


@dataclass
class SampleTokens:
    """One modality of one masked sample: 1D tensors of equal length N."""

    ids: torch.Tensor  # (N,) long; image_patches: (N, values)
    is_input: torch.Tensor  # (N,) bool
    is_target: torch.Tensor  # (N,) bool
    positions: torch.Tensor  # (N,) long


MaskedSample = dict[str, SampleTokens]


# ----------------------------------------------------------------------------- small random helpers

def _numpy_rng(gen: torch.Generator) -> np.random.Generator:
    """A numpy generator seeded from `gen` (numpy has the Dirichlet sampler torch lacks a generator for)."""
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=gen)))


def _randint(lo: int, hi: int, gen: torch.Generator) -> int:
    return int(torch.randint(lo, hi + 1, (1,), generator=gen))


def _random_partition(total: int, parts: int, gen: torch.Generator) -> list[int]:
    """`total` split into `parts` positive integers, uniformly over compositions."""
    if parts == 1:
        return [total]
    cuts = (torch.randperm(total - 1, generator=gen)[: parts - 1] + 1).sort().values.tolist()
    edges = [0, *cuts, total]
    return [b - a for a, b in zip(edges, edges[1:])]


def split_budget(budget: int, proportions: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Integer counts close to budget * proportions, never above capacity, summing to the budget
    (or to all the room the modalities with a positive proportion have). Largest remainders
    first, then what capping left over goes to the modalities with room, largest share first."""
    capacity = np.where(proportions > 0, capacity, 0)
    budget = int(min(budget, capacity.sum()))
    want = proportions * budget
    counts = np.minimum(np.floor(want).astype(np.int64), capacity)
    for i in np.argsort(-(want - np.floor(want)), kind="stable"):
        if counts.sum() < budget and counts[i] < capacity[i]:
            counts[i] += 1
    for i in np.argsort(-proportions, kind="stable"):
        counts[i] += min(capacity[i] - counts[i], budget - counts.sum())
    return counts


# ----------------------------------------------------------------------------- text

def span_mask(tokens: Sequence[int], num_noise: int, mean_span: float, specials: TextSpecials,
              gen: torch.Generator) -> tuple[list[int], list[int]]:
    """T5-style span masking of `tokens` with `num_noise` masked tokens.

    Returns (input, target): input is the text with each masked span replaced by its sentinel;
    target is sentinel_0 span_0 sentinel_1 span_1 ... [EOS]. `unmask_spans` inverts it.
    """
    n = len(tokens)
    num_noise = max(1, min(num_noise, n))
    num_clean = n - num_noise
    num_spans = max(1, round(num_noise / mean_span))
    num_spans = min(num_spans, num_noise, num_clean + 1, len(specials.sentinel_ids))
    noise = _random_partition(num_noise, num_spans, gen)
    # num_spans + 1 clean segments; the first and last may be empty.
    clean = _random_partition(num_clean + 2, num_spans + 1, gen) if num_spans + 1 <= num_clean + 2 else None
    if clean is None:  # no clean token at all: one span covering everything
        clean = [1, 1]
    clean[0] -= 1
    clean[-1] -= 1
    inputs, targets, i = [], [], 0
    for s in range(num_spans):
        inputs += tokens[i: i + clean[s]]
        i += clean[s]
        sentinel = specials.sentinel_ids[s]
        inputs.append(sentinel)
        targets += [sentinel, *tokens[i: i + noise[s]]]
        i += noise[s]
    inputs += tokens[i:]
    targets.append(specials.eos_id)
    return list(inputs), list(targets)


def unmask_spans(inputs: Sequence[int], targets: Sequence[int], specials: TextSpecials) -> list[int]:
    """Rebuild the text from span-masked input and target (the inverse of `span_mask`)."""
    sentinels = set(specials.sentinel_ids)
    spans, current = {}, None
    for t in targets:
        if t == specials.eos_id:
            break
        if t in sentinels:
            current = t
            spans[current] = []
        elif current is not None:
            spans[current].append(t)
    out = []
    for t in inputs:
        out += spans.get(t, []) if t in sentinels else [t]
    return out


def _text_tokens(inputs: Sequence[int], targets: Sequence[int]) -> SampleTokens:
    """Input and target sequences side by side in one block, each with its own positions."""
    n_in, n_tgt = len(inputs), len(targets)
    ids = torch.tensor([*inputs, *targets], dtype=torch.long)
    is_input = torch.zeros(n_in + n_tgt, dtype=torch.bool)
    is_input[:n_in] = True
    positions = torch.cat([torch.arange(n_in), torch.arange(n_tgt)])
    return SampleTokens(ids, is_input, ~is_input, positions)


# ----------------------------------------------------------------------------- the masker

class Masker:
    """Applies a `MaskingConfig` to samples of tokens.

    A sample maps modality name -> tokens: an int array of `max_tokens` ids for image kinds, a list
    of token ids (no [SOS]/[EOS]) for text. Names the masker does not know are ignored; absent
    or empty modalities take no part.
    """

    def __init__(self, config: MaskingConfig, specs: Sequence[ModalitySpec],
                 text_specials: Optional[Mapping[str, TextSpecials]] = None, source: str = "<masking config>"):
        self.config = config
        self.specs = list(specs)
        self.names = [s.name for s in self.specs]
        self.text_specials = dict(text_specials or {})
        for spec in self.specs:
            if spec.kind == "text" and spec.name not in self.text_specials:
                raise ValueError(f"text modality '{spec.name}' needs TextSpecials (eos and sentinel ids)")
        self.input_alphas = [self._alphas(c, c.input_alphas, source, targets=False) for c in config.mixture]
        self.target_alphas = [self._alphas(c, c.target_alphas, source, targets=True) for c in config.mixture]
        self.weights = torch.tensor([c.weight for c in config.mixture], dtype=torch.float64)
        if float(self.weights.sum()) <= 0:
            raise ConfigError(f"{source}: mixture weights sum to 0")

    def _alphas(self, comp: MixtureComponent, table: Mapping[str, float], source: str, targets: bool) -> np.ndarray:
        unknown = [k for k in table if k != ALL and k not in self.names]
        if unknown:
            raise ConfigError(f"{source}: mixture '{comp.name}' names modality '{unknown[0]}' "
                              f"that is not being trained (modalities: {', '.join(self.names)})")
        rest = table.get(ALL, 0.0)
        alphas = np.array([table.get(n, rest) for n in self.names], dtype=np.float64)
        if targets:  # input-only kinds are never targets; '*' skips them
            for i, spec in enumerate(self.specs):
                if spec.kind == "image_patches":
                    if table.get(spec.name, 0.0) > 0:
                        raise ConfigError(f"{source}: mixture '{comp.name}': target_alphas names '{spec.name}', "
                                          f"an {spec.kind} modality, which is an encoder input only")
                    alphas[i] = 0.0
        return alphas

    # -- validation -------------------------------------------------------------------

    def prepare(self, sample: Mapping[str, object]) -> dict[str, np.ndarray]:
        """Validated int64 token arrays of the modalities present (empty ones dropped): 1D, or
        (N, values) for image_patches."""
        out = {}
        for spec in self.specs:
            value = sample.get(spec.name)
            if value is None:
                continue
            ids = np.asarray(value, dtype=np.int64).reshape(-1)
            if spec.kind == "image_patches":
                if ids.size != spec.max_tokens * spec.values_per_token:
                    raise ValueError(f"modality '{spec.name}': expected {spec.max_tokens} patches of "
                                     f"{spec.values_per_token} values, got {ids.size} values")
                ids = ids.reshape(spec.max_tokens, spec.values_per_token)
            elif spec.kind == "text":
                ids = ids[: spec.max_tokens]
            elif spec.kind == "image_seq" and not 1 <= ids.size <= spec.max_tokens:
                # adaptive FlexTok lengths (`fourm tokenize --rgb-tokens auto`): any prefix 1..max_tokens
                raise ValueError(f"modality '{spec.name}': expected 1..{spec.max_tokens} tokens, got {ids.size}")
            elif spec.kind == "image_grid" and ids.size != spec.max_tokens:
                raise ValueError(f"modality '{spec.name}': expected {spec.max_tokens} tokens, got {ids.size}")
            if ids.size == 0:
                continue
            bad = ids[(ids < 0) | (ids >= spec.vocab_size)]
            if bad.size:
                raise ValueError(f"modality '{spec.name}': token id {int(bad[0])} outside the vocabulary 0..{spec.vocab_size - 1}")
            out[spec.name] = ids
        return out

    # -- masking ----------------------------------------------------------------------

    def __call__(self, sample: Mapping[str, object], gen: torch.Generator) -> MaskedSample:
        tokens = self.prepare(sample)
        present = np.array([n in tokens for n in self.names])
        capacity = np.array([len(tokens[n]) if n in tokens else 0 for n in self.names], dtype=np.int64)
        comp = int(torch.multinomial(self.weights, 1, generator=gen))
        rng = _numpy_rng(gen)
        component = self.config.mixture[comp]
        n_in = _randint(*(component.input_tokens or self.config.input_tokens), gen)
        n_tgt = _randint(*(component.target_tokens or self.config.target_tokens), gen)
        in_counts = self._split(n_in, self.input_alphas[comp] * present, capacity, rng)
        tgt_counts = self._split(n_tgt, self.target_alphas[comp] * present, capacity - in_counts, rng)
        out = {}
        for spec, n_i, n_t in zip(self.specs, in_counts, tgt_counts):
            if spec.name in tokens and (n_i or n_t):
                out[spec.name] = self._choose(spec, tokens[spec.name], int(n_i), int(n_t), gen)
        return out

    @staticmethod
    def _split(budget: int, alphas: np.ndarray, capacity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        active = (alphas > 0) & (capacity > 0)
        counts = np.zeros(len(alphas), dtype=np.int64)
        if budget <= 0 or not active.any():
            return counts
        proportions = np.zeros(len(alphas))
        proportions[active] = rng.dirichlet(alphas[active])
        return split_budget(budget, proportions, capacity)

    def _choose(self, spec: ModalitySpec, ids: np.ndarray, n_in: int, n_tgt: int, gen: torch.Generator) -> SampleTokens:
        if spec.kind == "text":
            return self._choose_text(spec, ids.tolist(), n_in, n_tgt, gen)
        N = len(ids)
        order = torch.randperm(N, generator=gen)
        is_input = torch.zeros(N, dtype=torch.bool)
        is_input[order[:n_in]] = True
        is_target = torch.zeros(N, dtype=torch.bool)
        if spec.kind == "image_seq" and n_tgt and float(torch.rand(1, generator=gen)) < self.config.seq_prefix_prob:
            k = 2 ** _randint(0, int(np.log2(n_tgt)), gen)  # a power of two <= n_tgt
            is_target[:k] = True
            is_target &= ~is_input
        else:
            is_target[order[n_in: n_in + n_tgt]] = True
        return SampleTokens(torch.from_numpy(ids.copy()), is_input, is_target, torch.arange(N))

    def _choose_text(self, spec: ModalitySpec, ids: list[int], n_in: int, n_tgt: int, gen: torch.Generator) -> SampleTokens:
        specials = self.text_specials[spec.name]
        if n_in and n_tgt:
            inputs, targets = span_mask(ids, n_tgt, self.config.text_mean_span, specials, gen)
        elif n_in:
            inputs, targets = ids, []
        else:
            inputs, targets = [], [specials.sentinel_ids[0], *ids, specials.eos_id]
        return _text_tokens(inputs, targets)

    def direction(self, sample: Mapping[str, object], inputs: Sequence[str], targets: Sequence[str]) -> Optional[MaskedSample]:
        """Fixed masking for evaluation: all tokens of `inputs` in, all of `targets` out.
        None if the sample lacks one of the named modalities."""
        tokens = self.prepare(sample)
        if any(n not in tokens for n in (*inputs, *targets)):
            return None
        input_only = [n for n in targets if self.specs[self.names.index(n)].kind == "image_patches"]
        if input_only:
            raise ValueError(f"'{input_only[0]}' is an image_patches modality, an encoder input only, not a target")
        out = {}
        for name in (*inputs, *targets):
            spec = self.specs[self.names.index(name)]
            ids = tokens[name]
            is_in = name in inputs
            if spec.kind == "text":
                out[name] = self._choose_text(spec, ids.tolist(), int(is_in), int(not is_in), torch.Generator())
            else:
                N = len(ids)
                flag = torch.ones(N, dtype=torch.bool)
                out[name] = SampleTokens(torch.from_numpy(ids.copy()), flag if is_in else ~flag, ~flag if is_in else flag, torch.arange(N))
        return out


def collate(samples: Sequence[MaskedSample], names: Sequence[str]):
    """Pad masked samples into a batch {name: ModalityTokens (B, N_max)} with every name present
    (image_patches ids: (B, N_max, values))."""
    from fourm.model.batch import ModalityTokens

    B = len(samples)
    batch = {}
    for name in names:
        length = max((len(s[name].ids) for s in samples if name in s), default=0)
        values = next((s[name].ids.shape[1:] for s in samples if name in s), ())  # image_patches: (F,)
        ids = torch.zeros(B, length, *values, dtype=torch.long)
        positions = torch.zeros(B, length, dtype=torch.long)
        is_input = torch.zeros(B, length, dtype=torch.bool)
        is_target = torch.zeros(B, length, dtype=torch.bool)
        for b, s in enumerate(samples):
            if name in s:
                t, n = s[name], len(s[name].ids)
                ids[b, :n], positions[b, :n], is_input[b, :n], is_target[b, :n] = t.ids, t.positions, t.is_input, t.is_target
        batch[name] = ModalityTokens(ids, is_input, is_target, positions)
    return batch
