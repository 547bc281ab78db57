"""generate_target: token ids of one target modality from the tokens of some conditions.

    ids = generate_target(model, {"caption": caption_ids}, "rgb", target_cfg, generator)  # (B, N)

Works for every kind. Causally decoded modalities (text; image_seq when the model lists it in
`causal_kinds`) use the autoregressive scheme with the decoder's KV cache: one decoder step per
token. The other modalities use MaskGIT or ROAR, one `target_logits` call per step (per
guidance pass); 'autoregressive' on them is ROAR in left-to-right order, one token per step.
"""
from __future__ import annotations

from typing import Callable, Mapping, Optional, Union

import torch

from fourm.generation.guidance import GuidancePass, GuidancePlan, combine, plan_passes
from fourm.generation.samplers import AutoregressiveSampler, MaskGITSampler, ROARSampler, SamplingParams
from fourm.model import FourM, ModalityTokens
from fourm.modalities import ModalitySpec

TEXT_PAD_ID, TEXT_EOS_ID = 0, 3  # fixed by modality_tokenizers.text (specials come first)
Conditions = Mapping[str, Union[torch.Tensor, ModalityTokens]]
# on_prefix(n, ids (B, N)) is called after the n-th token of a left-to-right decode; True stops it
PrefixHook = Callable[[int, torch.Tensor], bool]


def condition_tokens(spec: ModalitySpec, x: Union[torch.Tensor, ModalityTokens]) -> ModalityTokens:
    """A condition as encoder inputs: ids (B, N) -> every token an input ([PAD] excluded for text);
    pixel patches (B, N * values) -> (B, N, values)."""
    if isinstance(x, ModalityTokens):
        return x
    ids = x.long()
    if spec.kind == "image_patches":
        ids = ids.reshape(ids.shape[0], spec.max_tokens, spec.values_per_token)
    B, N = ids.shape[:2]
    is_input = ids != TEXT_PAD_ID if spec.kind == "text" else torch.ones(B, N, dtype=torch.bool, device=ids.device)
    positions = torch.arange(N, device=ids.device).expand(B, -1).clone()
    return ModalityTokens(ids, is_input, torch.zeros_like(is_input), positions)


def target_length(model: FourM, spec: ModalitySpec, num_tokens: Union[int, str, None]) -> int:
    """Tokens to generate; 'auto' (adaptive image_seq length) makes room for all of them."""
    if spec.kind == "image_grid":
        return spec.max_tokens
    n = spec.max_tokens if num_tokens in (None, "auto") else num_tokens
    limit = model.embeddings[spec.name].num_positions
    if not 1 <= n <= limit:
        raise ValueError(f"target '{spec.name}': num_tokens {n} outside 1..{limit}")
    return n


def _batch(conds: Mapping[str, ModalityTokens], p: GuidancePass, name: str, block: ModalityTokens) -> dict:
    """The conditions kept by pass `p` plus the target block."""
    return {**{n: conds[n] for n in p.conditions}, name: block}


def _empty_block(B: int, device) -> ModalityTokens:
    """A target placeholder with no roles, so a batch with no kept condition still has a size."""
    z = torch.zeros(B, 1, dtype=torch.long, device=device)
    return ModalityTokens(z, z.bool(), z.bool(), z)


@torch.no_grad()
def generate_target(model: FourM, conditions: Conditions, target_name: str, scheme_cfg, generator: Optional[torch.Generator],
                    batch_size: Optional[int] = None, on_prefix: Optional[PrefixHook] = None) -> torch.Tensor:
    """Token ids (B, N) of `target_name`. `scheme_cfg` is a `TargetConfig` (or anything with its
    fields: scheme, steps, num_tokens, temperature, temperature_schedule, token_schedule, top_k,
    top_p, cfg_scale, cfg_weights, cfg_schedule, choice_temperature, use_cache). Text stops at
    [EOS]; [PAD] fills the rest. `on_prefix` (causal targets only) may stop decoding early; untouched positions stay [PAD]."""
    spec = model.config.spec(target_name)
    if target_name in conditions:
        raise ValueError(f"'{target_name}' is both a condition and the target")
    conds = {n: condition_tokens(model.config.spec(n), x) for n, x in conditions.items()}
    B = batch_size or next((c.ids.shape[0] for c in conds.values()), None)
    if B is None:
        raise ValueError("no conditions: pass batch_size for unconditional generation")
    device = next(model.parameters()).device
    N = target_length(model, spec, getattr(scheme_cfg, "num_tokens", None))
    guidance = GuidancePlan(tuple(plan_passes(list(conds), scheme_cfg.cfg_scale, getattr(scheme_cfg, "cfg_weights", None))),
                            getattr(scheme_cfg, "cfg_schedule", "constant"))
    params = SamplingParams(scheme_cfg.temperature, scheme_cfg.temperature_schedule, scheme_cfg.top_k, scheme_cfg.top_p)
    causal = model.embeddings[target_name].causal
    if causal:
        if scheme_cfg.scheme != "autoregressive":
            raise ValueError(f"'{target_name}' is decoded causally by this model: use scheme autoregressive, not {scheme_cfg.scheme}")
        sampler = AutoregressiveSampler(params, stop_id=TEXT_EOS_ID if spec.kind == "text" else None, pad_id=TEXT_PAD_ID)
        run = decode_with_cache if getattr(scheme_cfg, "use_cache", True) else decode_without_cache
        return run(model, conds, guidance, target_name, N, B, sampler, generator, device, on_prefix)
    if scheme_cfg.scheme == "maskgit":
        choice = getattr(scheme_cfg, "choice_temperature", 0.0)
        sampler, steps = MaskGITSampler(params, scheme_cfg.token_schedule, choice), scheme_cfg.steps
    elif scheme_cfg.scheme == "roar":
        sampler, steps = ROARSampler(params, scheme_cfg.token_schedule), scheme_cfg.steps
    else:
        sampler, steps = ROARSampler(params, "linear", order="left_to_right"), N
    return decode_parallel(model, conds, guidance, target_name, N, B, sampler, steps, generator, device)


def decode_parallel(model, conds, guidance: GuidancePlan, name, N, B, sampler, steps, generator, device) -> torch.Tensor:
    """MaskGIT / ROAR: decoded tokens become encoder inputs, the positions the sampler asks for
    become decoder targets; one `target_logits` call per step and guidance pass."""
    ids = torch.zeros(B, N, dtype=torch.long, device=device)
    done = torch.zeros(B, N, dtype=torch.bool, device=device)
    positions = torch.arange(N, device=device).expand(B, -1)
    sampler.set_steps(steps, N, generator, B)
    for t in range(sampler.num_steps):
        block = ModalityTokens(ids, done, sampler.query(done), positions)
        passes = guidance.at(t, sampler.num_steps)
        logits = combine([model.target_logits(_batch(conds, p, name, block))[name] for p in passes], passes)  # (B, N, V)
        out = sampler.step(logits, ids, done, generator)
        ids, done = out.ids, out.done
    return ids


def decode_with_cache(model, conds, guidance: GuidancePlan, name, N, B, sampler, generator, device, on_prefix=None) -> torch.Tensor:
    """Left to right with one KV cache per guidance pass: each token costs one decoder step."""
    states = [model.start_decoding(model.encode(_batch(conds, p, name, _empty_block(B, device))), name) for p in guidance.passes]
    ids = torch.full((B, N), TEXT_PAD_ID, dtype=torch.long, device=device)
    sampler.set_steps(N, B, device)
    for i in range(N):
        prev = ids[:, i - 1: i] if i else ids[:, :1]  # (B, 1), ignored at i == 0
        pos = torch.full((B, 1), i, dtype=torch.long, device=device)
        first = torch.full((B, 1), i == 0, dtype=torch.bool, device=device)
        logits = combine([model.decode_step(s, prev, pos, first)[:, 0] for s in states], guidance.at(i, N, keep_all=True))  # (B, V)
        ids[:, i] = sampler.step(logits, generator).ids
        if sampler.all_finished or (on_prefix is not None and on_prefix(i + 1, ids)):
            break
    return ids


def decode_without_cache(model, conds, guidance: GuidancePlan, name, N, B, sampler, generator, device, on_prefix=None) -> torch.Tensor:
    """The reference for `decode_with_cache`: re-runs encoder and decoder over the whole prefix
    for every token (O(N^2) work)."""
    ids = torch.full((B, N), TEXT_PAD_ID, dtype=torch.long, device=device)
    positions = torch.arange(N, device=device).expand(B, -1)
    sampler.set_steps(N, B, device)
    for i in range(N):
        role = torch.ones(B, i + 1, dtype=torch.bool, device=device)
        block = ModalityTokens(ids[:, : i + 1], ~role, role, positions[:, : i + 1])
        passes = guidance.at(i, N, keep_all=True)  # as decode_with_cache, so the two agree
        logits = combine([model.target_logits(_batch(conds, p, name, block))[name][:, i] for p in passes], passes)
        ids[:, i] = sampler.step(logits, generator).ids
        if sampler.all_finished or (on_prefix is not None and on_prefix(i + 1, ids)):
            break
    return ids
