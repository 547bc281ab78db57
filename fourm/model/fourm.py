"""FourM: a pre-LN encoder-decoder over the tokens of several modalities.

    batch = {name: ModalityTokens(ids, is_input, is_target, positions)}   # each (B, N_m)
    out = model(batch)              # FourMOutput: loss, per-modality losses and target counts
    enc = model.encode(batch)       # encoder only (conditions)
    logits = model.target_logits(batch)              # {name: (B, N_m, V_m)} for MaskGIT / ROAR
    state = model.start_decoding(enc, "caption")     # autoregressive decoding with a KV cache
    logits = model.decode_step(state, prev_ids, positions, is_first)   # (B, k, V)

The input tokens of all modalities are gathered into one padded encoder sequence (after one
learned register token, so a sample with no input still has something to attend to), the
target tokens into one padded decoder sequence ordered by modality, then position.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from fourm.model.appearance import TokenHead, standardise
from fourm.model.batch import Batch
from fourm.model.config import FourMConfig
from fourm.model.embeddings import ModalityEmbedding, grid_cell_centres
from fourm.model.layers import KV, DecoderBlock, EncoderBlock, make_norm


@dataclass
class Gathered:
    """Selected tokens of all modalities packed per sample (left-aligned), each (B, L)."""

    ids: torch.Tensor
    positions: torch.Tensor
    modality: torch.Tensor  # index into config.modalities
    index: torch.Tensor  # index within the modality's (B, N_m) block
    valid: torch.Tensor  # False on padding


@dataclass
class EncoderOutput:
    memory: torch.Tensor  # (B, S, D), S = 1 register + inputs
    valid: torch.Tensor  # (B, S) bool
    modality: Optional[torch.Tensor] = None  # (B, S) index into config.modalities, -1 for the register
    positions: Optional[torch.Tensor] = None  # (B, S)


@dataclass
class FourMOutput:
    loss: torch.Tensor  # mean over present modalities of the per-modality mean CE
    losses: dict[str, torch.Tensor]  # per-modality mean CE (only modalities with targets)
    num_targets: dict[str, int]


@dataclass
class DecodeState:
    """KV cache of autoregressive decoding of one modality; `decode_step` updates it."""

    modality: str
    memory_kv: list[KV]  # per decoder layer, cross-attention keys/values of the encoder output
    cross_mask: torch.Tensor  # (B, 1, 1, S)
    past_kv: list[Optional[KV]]  # per decoder layer, self-attention keys/values so far
    past_positions: torch.Tensor  # (B, t)
    encoder: Optional[EncoderOutput] = None  # for the grid cross-attention bias of new queries


class FourM(nn.Module):
    def __init__(self, config: FourMConfig):
        super().__init__()
        self.config = config
        c = config
        self.names = c.modality_names
        self.embeddings = nn.ModuleDict(
            {m.name: ModalityEmbedding(m, c.dim, c.text_positions, causal=m.kind in c.causal_kinds,
                                       grid_units=c.grid_position_units,
                                       appearance_features=c.code_appearance.get(m.name, 0),
                                       patch_stem=c.patch_stem) for m in c.modalities})
        self.register_token = nn.Parameter(torch.zeros(c.dim))
        block_args = (c.dim, c.heads, c.mlp_ratio, c.qk_norm, c.bias, c.norm)
        self.encoder = nn.ModuleList(EncoderBlock(*block_args) for _ in range(c.encoder_depth))
        self.encoder_norm = make_norm(c.norm, c.dim, c.bias)
        self.decoder = nn.ModuleList(DecoderBlock(*block_args) for _ in range(c.decoder_depth))
        self.decoder_norm = make_norm(c.norm, c.dim, c.bias)
        self.heads = nn.ModuleDict({m.name: TokenHead(c.dim, m.vocab_size, c.bias, c.code_appearance.get(m.name, 0))
                                    for m in c.modalities if m.kind != "image_patches"})  # inputs only: no head
        causal = torch.tensor([m.kind in c.causal_kinds for m in c.modalities])
        self.register_buffer("causal_modality", causal, persistent=False)
        if c.grid_cross_bias:
            self.grid_cross_slope = nn.Parameter(torch.tensor(c.grid_cross_bias, dtype=torch.float32))
            self.register_buffer("grid_xy", grid_cell_centres(c.modalities), persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        std = self.config.init_std
        residual_std = std / math.sqrt(2 * (self.config.encoder_depth + self.config.decoder_depth))
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                is_residual_out = name.endswith(".proj") or name.endswith(".down")
                nn.init.trunc_normal_(module.weight, std=residual_std if is_residual_out else std, a=-3 * std, b=3 * std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        # Token, mask and modality embeddings start at unit scale, like the fixed sin-cos positions
        # they are added to: at std 0.02 the position swamps the token's identity and training
        # sits on a plateau (measured on a synthetic rgb->depth task, dim 64: loss 2.82 vs 1.87 after 40 steps).
        for emb in self.embeddings.values():
            table = getattr(emb.tokens, "weight", None)  # a conv patch stem ends in its own LayerNorm
            for p in (table, emb.encoder_modality, emb.decoder_modality, emb.mask_token):
                if p is not None:
                    nn.init.normal_(p, std=1.0)
            if emb.is_patches and table is not None:  # pixels in [-1, 1] (variance ~1/3) over F values: unit-scale output
                nn.init.normal_(emb.tokens.weight, std=(3.0 / emb.tokens.in_features) ** 0.5)
        nn.init.normal_(self.register_token, std=1.0)
        # The standardised appearance rows (F features of unit variance) projected to unit scale too.
        for emb in self.embeddings.values():
            if emb.appearance is not None:
                nn.init.normal_(emb.appearance.project.weight, std=emb.appearance.table.shape[1] ** -0.5)

    def set_code_appearance(self, tables: dict[str, torch.Tensor]) -> None:
        """Fill the appearance tables {name: (V, F)} of `config.code_appearance` (standardised
        here); they are buffers, saved and loaded with the weights."""
        missing = sorted(set(self.config.code_appearance) - set(tables))
        if missing:
            raise ValueError(f"code_appearance: no table given for modality '{missing[0]}'")
        for name, table in tables.items():
            emb = self.embeddings[name].appearance if name in self.embeddings else None
            if emb is None:
                raise ValueError(f"code_appearance: modality '{name}' has no appearance table in this model")
            if tuple(table.shape) != tuple(emb.table.shape):
                raise ValueError(f"code_appearance: table of '{name}' has shape {tuple(table.shape)}, "
                                 f"the model expects {tuple(emb.table.shape)}")
            rows = standardise(table).to(emb.table.device)
            emb.table.copy_(rows)
            self.heads[name].appearance_table.copy_(rows)

    # ------------------------------------------------------------------ checks and packing

    def check_batch(self, batch: Batch) -> None:
        """Clear errors for batches the model cannot use correctly (never a silent wrong loss)."""
        if not batch:
            raise ValueError("the batch has no modalities")
        for name, tokens in batch.items():
            if name not in self.embeddings:
                raise ValueError(f"batch has modality '{name}' that the model does not know (has: {', '.join(self.names)})")
            used = tokens.is_input | tokens.is_target
            if bool((tokens.is_input & tokens.is_target).any()):
                raise ValueError(f"modality '{name}': a token is both input and target")
            if self.embeddings[name].is_patches:
                self._check_patches(name, tokens)
            ids = tokens.ids[used]
            vocab = self.embeddings[name].vocab_size
            bad = ids[(ids < 0) | (ids >= vocab)]
            if bad.numel():
                raise ValueError(f"modality '{name}': token id {int(bad[0])} outside the vocabulary 0..{vocab - 1}")
            pos = tokens.positions[used]
            limit = self.embeddings[name].num_positions
            bad = pos[(pos < 0) | (pos >= limit)]
            if bad.numel():
                raise ValueError(f"modality '{name}': position {int(bad[0])} outside 0..{limit - 1}")

    def _check_patches(self, name: str, tokens) -> None:
        features = self.embeddings[name].tokens.in_features
        if tokens.ids.shape[1] == 0:  # no patches in any sample of the batch (collated as (B, 0))
            return
        if tokens.ids.dim() != 3 or tokens.ids.shape[-1] != features:
            raise ValueError(f"modality '{name}': pixel patches must be (B, N, {features}), got {tuple(tokens.ids.shape)}")
        if bool(tokens.is_target.any()):
            raise ValueError(f"modality '{name}' is image_patches, an encoder input only, never a target")

    def _gather(self, batch: Batch, role: str) -> Gathered:
        """Pack the tokens with `role` ('is_input' or 'is_target') of all modalities, left-aligned."""
        present = [n for n in self.names if n in batch]
        # (B, N_m) each; pixel patches stand in as zeros here, `_embed` reads their values from the batch
        flat = {n: batch[n].ids if batch[n].ids.dim() == 2 else torch.zeros_like(batch[n].positions) for n in present}
        ref = flat[present[0]]
        B = ref.shape[0]
        ids = torch.cat([flat[n] for n in present], 1)  # (B, N_total)
        positions = torch.cat([batch[n].positions for n in present], 1)
        modality = torch.cat([torch.full_like(flat[n], self.names.index(n)) for n in present], 1)
        index = torch.cat([torch.arange(flat[n].shape[1], device=ref.device).expand(B, -1) for n in present], 1)
        selected = torch.cat([getattr(batch[n], role) for n in present], 1)
        count = selected.sum(1)  # (B,)
        length = int(count.max()) if B else 0
        # A stable sort keeps the selected tokens first, in modality-then-index order.
        order = torch.sort((~selected).to(torch.int32), dim=1, stable=True).indices[:, :length]  # (B, L)
        valid = torch.arange(length, device=ref.device)[None] < count[:, None]
        take = lambda t: torch.gather(t, 1, order)
        return Gathered(take(ids), take(positions), take(modality), take(index), valid)

    def _embed(self, g: Gathered, queries: bool, batch: Batch) -> torch.Tensor:
        """Encoder inputs or decoder queries (B, L, D) for packed tokens. Every modality's
        embedding is called (possibly on no rows) so all parameters take part in every step."""
        B, L = g.ids.shape
        x = torch.zeros(B, L, self.config.dim, device=g.ids.device, dtype=self.register_token.dtype)
        if queries:
            prev_ids = torch.roll(g.ids, 1, dims=1)
            is_first = torch.roll(g.modality, 1, dims=1) != g.modality
            is_first[:, :1] = True
        for i, name in enumerate(self.names):
            rows = g.valid & (g.modality == i)
            emb = self.embeddings[name]
            if queries:
                if not emb.is_patches:
                    x[rows] = emb(prev_ids[rows], g.positions[rows], is_first[rows]).to(x.dtype)
            elif emb.is_patches:
                x[rows] = emb(self._patch_values(batch, name, rows, g), g.positions[rows]).to(x.dtype)
            else:
                x[rows] = emb(g.ids[rows], g.positions[rows]).to(x.dtype)
        return x

    def _patch_values(self, batch: Batch, name: str, rows: torch.Tensor, g: Gathered) -> torch.Tensor:
        """The pixel values (n, F) of the packed rows `rows` (B, L) of image_patches modality `name`."""
        if name not in batch or batch[name].ids.dim() != 3:  # absent, or an empty (B, 0) block
            return torch.zeros(0, self.embeddings[name].tokens.in_features, dtype=torch.long, device=g.ids.device)
        return batch[name].ids[rows.nonzero()[:, 0], g.index[rows]]

    def _cross_mask(self, enc: EncoderOutput, modality: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Cross-attention mask of queries (B, T) of `modality` at `positions`: key padding (B, 1, 1, S)
        bool, or with `grid_cross_bias` a float (B, H, T, S) adding -slope_h * d^2 between
        image_grid queries and image_grid inputs (d: distance of the cell centres, image sides)."""
        keep = enc.valid[:, None, None, :]
        if not self.config.grid_cross_bias:
            return keep
        last = self.grid_xy.shape[1] - 1  # text positions may run past it: their rows are NaN anyway
        q_xy = self.grid_xy[modality.clamp(min=0), positions.clamp(0, last)]  # (B, T, 2), NaN unless grid
        k_xy = self.grid_xy[enc.modality.clamp(min=0), enc.positions.clamp(0, last)]  # (B, S, 2)
        k_xy = torch.where((enc.modality >= 0)[..., None], k_xy, torch.nan)  # the register is not a cell
        d2 = (q_xy[:, :, None] - k_xy[:, None]).square().sum(-1).nan_to_num(0.0)  # (B, T, S); 0 unless both grid
        bias = -self.grid_cross_slope.clamp(min=0)[None, :, None, None] * d2[:, None]  # (B, H, T, S)
        return bias.masked_fill(~keep, float("-inf")).to(enc.memory.dtype)

    def _decoder_self_mask(self, g: Gathered) -> torch.Tensor:
        """(B, 1, T, T) bool. Within an image modality: full; within a causal modality: keys at
        earlier or equal positions; across modalities: blocked by default, and always blocked to
        and from causal modalities (their teacher-forced tokens would leak the answer)."""
        T = g.ids.shape[1]
        same = g.modality[:, :, None] == g.modality[:, None, :]  # (B, T, T)
        allowed = g.valid[:, None, :].expand(-1, T, -1)
        if self.config.block_cross_modality:
            allowed = allowed & same
        causal = self.causal_modality[g.modality]  # (B, T)
        earlier = g.positions[:, None, :] <= g.positions[:, :, None]
        involves_causal = causal[:, :, None] | causal[:, None, :]
        allowed = allowed & torch.where(involves_causal, same & earlier, True)
        allowed = allowed | torch.eye(T, dtype=torch.bool, device=g.ids.device)  # padding rows attend to themselves
        return allowed[:, None]

    # ------------------------------------------------------------------ encoder / decoder

    def encode(self, batch: Batch) -> EncoderOutput:
        """Run the encoder on the input tokens of `batch`."""
        g = self._gather(batch, "is_input")
        x = self._embed(g, queries=False, batch=batch)  # (B, L, D)
        B = x.shape[0]
        x = torch.cat([self.register_token.expand(B, 1, -1), x], dim=1)  # (B, 1 + L, D)
        valid = torch.cat([torch.ones(B, 1, dtype=torch.bool, device=x.device), g.valid], dim=1)  # (B, S)
        mask = valid[:, None, None, :]  # (B, 1, 1, S): key padding
        for block in self.encoder:
            x = block(x, mask)
        register = torch.full((B, 1), -1, dtype=torch.long, device=x.device)
        modality = torch.cat([register, torch.where(g.valid, g.modality, -1)], dim=1)  # (B, S)
        positions = torch.cat([register.clamp(min=0), g.positions], dim=1)
        return EncoderOutput(self.encoder_norm(x), valid, modality, positions)

    def decode(self, enc: EncoderOutput, batch: Batch) -> tuple[torch.Tensor, Gathered]:
        """Decoder hidden states (B, T, D) of the target tokens of `batch`, and their packing."""
        g = self._gather(batch, "is_target")
        x = self._embed(g, queries=True, batch=batch)  # (B, T, D)
        self_mask = self._decoder_self_mask(g)
        cross_mask = self._cross_mask(enc, g.modality, g.positions)
        for block in self.decoder:
            x, _ = block(x, self_mask, block.memory_kv(enc.memory), cross_mask)
        return self.decoder_norm(x), g

    # ------------------------------------------------------------------ training and inference

    def forward(self, batch: Batch) -> FourMOutput:
        """Cross-entropy per modality (mean over its target tokens), then mean over modalities."""
        self.check_batch(batch)
        hidden, g = self.decode(self.encode(batch), batch)
        losses, counts, unused = {}, {}, hidden.new_zeros(())
        for i, name in enumerate(self.names):
            if name not in self.heads:  # an input-only modality
                continue
            rows = g.valid & (g.modality == i)
            logits = self.heads[name](hidden[rows])  # (n, V)
            if logits.shape[0] == 0:
                unused = unused + logits.sum() * 0.0  # keeps the head in the graph (ZeRO/DDP)
                continue
            losses[name] = F.cross_entropy(logits.float(), g.ids[rows])
            counts[name] = logits.shape[0]
        if not losses:
            raise ValueError("the batch has no target tokens")
        loss = torch.stack(list(losses.values())).mean() + unused
        return FourMOutput(loss, losses, counts)

    def target_logits(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Logits at every target position: {name: (B, N_m, V_m)}, zero where not a target."""
        self.check_batch(batch)
        hidden, g = self.decode(self.encode(batch), batch)
        out = {}
        for i, name in enumerate(self.names):
            if name not in batch or not bool(batch[name].is_target.any()):
                continue
            rows = g.valid & (g.modality == i)
            logits = self.heads[name](hidden[rows])  # (n, V)
            B, N = batch[name].ids.shape
            full = logits.new_zeros(B, N, logits.shape[-1])
            b_idx = rows.nonzero()[:, 0]
            full[b_idx, g.index[rows]] = logits
            out[name] = full
        return out

    @torch.no_grad()
    def start_decoding(self, enc: EncoderOutput, modality: str) -> DecodeState:
        """Cache the encoder's cross-attention keys/values for decoding `modality` step by step."""
        self.config.spec(modality)
        memory_kv = [block.memory_kv(enc.memory) for block in self.decoder]
        B = enc.memory.shape[0]
        empty = torch.zeros(B, 0, dtype=torch.long, device=enc.memory.device)
        return DecodeState(modality, memory_kv, enc.valid[:, None, None, :], [None] * len(self.decoder), empty, enc)

    @torch.no_grad()
    def decode_step(self, state: DecodeState, prev_ids: torch.Tensor, positions: torch.Tensor,
                    is_first: torch.Tensor) -> torch.Tensor:
        """Decode k new target tokens per sample (usually k = 1) of `state.modality`.

        prev_ids (B, k): the previous target token of each (ignored where is_first (B, k) is True,
        and for modalities that are not decoded causally); positions (B, k). Returns logits
        (B, k, V). Equals `target_logits` on the same targets when positions increase step by step.
        """
        emb = self.embeddings[state.modality]
        B, k = positions.shape
        x = emb(prev_ids.reshape(-1), positions.reshape(-1), is_first.reshape(-1)).view(B, k, -1)
        all_positions = torch.cat([state.past_positions, positions], dim=1)  # (B, t + k)
        cross_mask = state.cross_mask
        if self.config.grid_cross_bias:
            index = torch.full_like(positions, self.names.index(state.modality))
            cross_mask = self._cross_mask(state.encoder, index, positions)
        if emb.causal:
            self_mask = all_positions[:, None, :] <= positions[:, :, None]  # (B, k, t + k)
        else:
            self_mask = torch.ones(B, k, all_positions.shape[1], dtype=torch.bool, device=x.device)
        for i, block in enumerate(self.decoder):
            x, state.past_kv[i] = block(x, self_mask[:, None], state.memory_kv[i], cross_mask, state.past_kv[i])
        state.past_positions = all_positions
        return self.heads[state.modality](self.decoder_norm(x))

    def num_parameters(self, embeddings: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        if not embeddings:
            n -= sum(p.numel() for e in self.embeddings.values() for p in e.tokens.parameters())
        return n

    # ------------------------------------------------------------------ saving

    def save_pretrained(self, folder) -> None:
        from fourm.model.io import save_pretrained

        save_pretrained(self, folder)

    @classmethod
    def from_pretrained(cls, folder, map_location: str = "cpu") -> "FourM":
        from fourm.model.io import load_pretrained

        return load_pretrained(folder, map_location)
