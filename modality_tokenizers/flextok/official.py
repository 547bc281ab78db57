"""Map between fourm's FlexTok state dict and the official ml-flextok checkpoint layout.

The official model is a set of `SequentialModuleDictWrapper`s (encoder / decoder `module_dict`)
plus a VAE; fourm's modules were named so that most of the mapping is a prefix rename. The
table (fourm prefix -> official prefix, tensor transform) is also printed in the README.
Facts about official names come from the public release's module code (FlexTransformer blocks:
attn.wq/wk/wv/proj, mlp.fc1/fc2/fc3, adaLN_modulation.1; Registers1D.registers;
MaskedNestedDropout.dropout_mask_token; LearnedNullCond.nullcond; PatchEmbedder.patch_proj;
PositionalEmbedding.posembs; LinearHead/ToPatchesLinearHead.proj; TimestepEmbedder.mlp).
"""
from __future__ import annotations

import os
from typing import Callable

import torch
from einops import rearrange
from torch import Tensor

ENC, DEC = "encoder.module_dict.", "decoder.module_dict."

# (fourm prefix, official prefix, kind). kind says how a tensor's layout differs.
NAME_MAP: list[tuple[str, str, str]] = [
    ("encoder.patch_emb.", ENC + "enc_patch_emb.patch_proj.", "same"),
    ("encoder.posemb", ENC + "enc_posemb_module.posembs", "posemb_2d"),
    ("encoder.registers", ENC + "enc_register_module.registers", "same"),
    ("encoder.transformer.", ENC + "enc_transformer.", "same"),
    ("encoder.to_latents.", ENC + "enc_to_latents.proj.", "same"),
    ("decoder.from_latents.", DEC + "dec_from_latents.proj.", "same"),
    ("decoder.register_posemb", DEC + "dec_registers_posemb_module.posembs", "posemb_1d"),
    ("decoder.nested_dropout.dropout_mask_token", DEC + "dec_nested_dropout.dropout_mask_token", "same"),
    ("decoder.null_cond", DEC + "dec_latent_dropout.nullcond", "same"),
    ("decoder.patch_emb.", DEC + "dec_noise_patch_emb.patch_proj.", "same"),
    ("decoder.posemb", DEC + "dec_patches_posemb_module.posembs", "posemb_2d"),
    ("decoder.time_embedder.", DEC + "dec_time_embedder.", "same"),
    ("decoder.transformer.", DEC + "dec_transformer.", "same"),
    ("decoder.head.", DEC + "dec_to_patches.", "same"),
    ("vae.", "vae.", "same"),  # diffusers AutoencoderKL names on both sides
]


def official_name(name: str) -> tuple[str, str]:
    """fourm state-dict key -> (official key, kind)."""
    for ours, theirs, kind in NAME_MAP:
        if name == ours or (ours.endswith(".") and name.startswith(ours)):
            return theirs + name[len(ours) :], kind
    raise KeyError(f"no official name for fourm parameter {name!r}")


# Official tensor -> fourm tensor of shape `like`.
_TO_FOURM: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "same": lambda t, like: t,
    # PositionalEmbedding sincos: (1, D, H_max, W_max), cropped to the grid ('absolute' scaling)
    "posemb_2d": lambda t, like: rearrange(
        t[..., : int(like.shape[0] ** 0.5), : int(like.shape[0] ** 0.5)], "1 d h w -> (h w) d"
    ),
    # PositionalEmbedding learnable, one axis: (1, 1, D, N_max)
    "posemb_1d": lambda t, like: t.reshape(t.shape[-2], t.shape[-1])[:, : like.shape[0]].T,
}

_TO_OFFICIAL: dict[str, Callable[[Tensor], Tensor]] = {
    "same": lambda t: t,
    "posemb_2d": lambda t: rearrange(t, "(h w) d -> 1 d h w", h=int(t.shape[0] ** 0.5)),
    "posemb_1d": lambda t: t.T.reshape(1, 1, t.shape[1], t.shape[0]),
}


def to_official_state_dict(model: torch.nn.Module) -> dict[str, Tensor]:
    """fourm FlexTok -> {official name: tensor}. REPA heads have no official counterpart and are left out."""
    out = {}
    for name, tensor in model.state_dict().items():
        if name.startswith(("repa_proj.", "repa_features.")):
            continue
        key, kind = official_name(name)
        out[key] = _TO_OFFICIAL[kind](tensor.detach()).contiguous().cpu()
    return out


def _strip_vae_wrapper(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Accept either `vae.<diffusers name>` or a wrapper's `vae.vae.<diffusers name>`."""
    if any(k.startswith("vae.vae.") for k in state):
        return {("vae." + k[len("vae.vae.") :] if k.startswith("vae.vae.") else k): v for k, v in state.items()}
    return state


def from_official_state_dict(model: torch.nn.Module, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """{official name: tensor} -> a state dict for `model`, checking every name and shape."""
    state = _strip_vae_wrapper(state)
    ours, used, problems = {}, set(), []
    for name, like in model.state_dict().items():
        if name.startswith(("repa_proj.", "repa_features.")):
            ours[name] = like  # not part of the official format; keep this model's values
            continue
        key, kind = official_name(name)
        if key not in state:
            problems.append(f"missing {key} (for {name})")
            continue
        tensor = _TO_FOURM[kind](state[key], like)
        if tensor.shape != like.shape:
            problems.append(f"{key}: shape {tuple(state[key].shape)} does not fit {name} {tuple(like.shape)}")
            continue
        ours[name] = tensor.to(like.dtype)
        used.add(key)
    unexpected = sorted(set(state) - used)
    if unexpected:
        problems.append(f"unexpected official keys (config mismatch?): {unexpected[:8]}")
    if problems:
        raise ValueError("official FlexTok checkpoint does not match the config:\n  " + "\n  ".join(problems[:20]))
    return ours


def load_official(model: torch.nn.Module, path: str | os.PathLike) -> torch.nn.Module:
    from safetensors.torch import load_file

    model.load_state_dict(from_official_state_dict(model, load_file(str(path))))
    return model.eval()


def save_official(model: torch.nn.Module, path: str | os.PathLike) -> None:
    from safetensors.torch import save_file

    save_file(to_official_state_dict(model), str(path))
