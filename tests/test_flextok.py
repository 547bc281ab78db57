"""FlexTok on the micro preset: shapes, causal register mask, nested dropout, persistence,
official-format round trip, sampler/CFG. CPU, seconds."""
import pytest
import torch

from modality_tokenizers.base import load_tokenizer
from modality_tokenizers.flextok import FlexTok, preset
from modality_tokenizers.flextok.masks import register_encoder_mask
from modality_tokenizers.flextok.nested_dropout import NestedDropout, keep_choices
from modality_tokenizers.flextok.official import official_name, to_official_state_dict


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter (also the zero-initialised ones) random values, so tests see real signal."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return model.eval()


@pytest.fixture(scope="module")
def model():
    return randomize(FlexTok(preset("micro")))


@pytest.fixture(scope="module")
def images():
    return torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_protocol_attributes(model):
    assert model.vocab_size == 64000 and model.max_tokens == 8
    assert FlexTok.tokenizer_type == "flextok"


def test_tokenize_and_mixed_length_detokenize(model, images):
    tokens = model.tokenize(images)
    assert len(tokens) == 3 and all(t.shape == (8,) and t.dtype == torch.long for t in tokens)
    assert all(0 <= int(t.min()) and int(t.max()) < model.vocab_size for t in tokens)
    mixed = [tokens[0][:1], tokens[1][:3], tokens[2]]
    out = model.detokenize(mixed, steps=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 3, 16, 16) and out.abs().max() <= 1
    assert model.encode(images).shape == (3, 8)
    assert model.decode(model.encode(images)[:, :5], steps=1).shape == (3, 3, 16, 16)


def test_mask_is_causal_among_registers():
    mask = register_encoder_mask(num_patches=4, num_registers=3)
    assert mask[:4, :4].all() and not mask[:4, 4:].any()  # patches see patches only
    assert torch.equal(mask[4:, 4:], torch.ones(3, 3, dtype=torch.bool).tril())
    assert mask[4:, :4].all()


def test_later_register_never_changes_earlier_tokens(model, images):
    latent = model.to_latent(images)
    before = model.encoder(latent)  # (B, R, d)
    with torch.no_grad():
        model.encoder.registers[5:] += 3.0  # perturb registers 5..7
        after = model.encoder(latent)
        model.encoder.registers[5:] -= 3.0
    assert torch.allclose(before[:, :5], after[:, :5], atol=1e-6)
    assert not torch.allclose(before[:, 5:], after[:, 5:])


def test_nested_dropout_keeps_exactly_first_k():
    nd = NestedDropout(dim=4)
    registers = torch.randn(3, 8, 4)
    keep = torch.tensor([1, 4, 8])
    out = nd(registers, keep)
    for b, k in enumerate(keep.tolist()):
        assert torch.equal(out[b, :k], registers[b, :k])
        assert torch.equal(out[b, k:], nd.dropout_mask_token.detach().expand(8 - k, 4))
    assert keep_choices(8) == [1, 2, 4, 8] and keep_choices(6) == [1, 2, 4, 6]
    sampled = NestedDropout.sample_keep(1000, 8, torch.Generator().manual_seed(0))
    assert set(sampled.tolist()) == {1, 2, 4, 8}


def test_fsq_round_trip_through_model(model, images):
    codes, ids = model.quantize(model.to_latent(images))
    assert torch.equal(model.fsq.indices_to_codes(ids), codes)
    assert torch.equal(model.fsq.codes_to_indices(codes), ids)


def test_save_load_round_trip(model, images, tmp_path):
    model.save_pretrained(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert isinstance(loaded, FlexTok) and loaded.cfg == model.cfg
    assert torch.equal(torch.stack(loaded.tokenize(images)), torch.stack(model.tokenize(images)))


def test_official_format_round_trip(model, images, tmp_path):
    path = tmp_path / "official.safetensors"
    model.save_official(path)
    names = set(to_official_state_dict(model))
    assert "encoder.module_dict.enc_register_module.registers" in names
    assert "decoder.module_dict.dec_transformer.blocks.0.adaLN_modulation.1.weight" in names
    assert official_name("decoder.head.proj.weight")[0] == "decoder.module_dict.dec_to_patches.proj.weight"
    loaded = FlexTok.from_official(path, preset("micro"))
    assert torch.equal(torch.stack(loaded.tokenize(images)), torch.stack(model.tokenize(images)))
    tokens = [t[:3] for t in model.tokenize(images)]
    a = model.detokenize(tokens, steps=2, generator=torch.Generator().manual_seed(0))
    b = loaded.detokenize(tokens, steps=2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)


def test_official_loader_names_mismatches(model, tmp_path):
    path = tmp_path / "official.safetensors"
    model.save_official(path)
    with pytest.raises(ValueError, match="shape"):
        FlexTok.from_official(path, preset("micro", num_registers=4))


@pytest.mark.parametrize("guidance", [dict(guidance_scale=1.0), dict(guidance_scale=3.0), dict(guidance_scale=3.0, norm_guidance=True)])
def test_sampler_shapes_and_determinism(model, images, guidance):
    tokens = [t[:2] for t in model.tokenize(images)]
    a = model.detokenize(tokens, steps=3, generator=torch.Generator().manual_seed(7), **guidance)
    b = model.detokenize(tokens, steps=3, generator=torch.Generator().manual_seed(7), **guidance)
    assert a.shape == (3, 3, 16, 16) and torch.equal(a, b)


def test_cfg_changes_the_output(model, images):
    tokens = [t[:2] for t in model.tokenize(images)]
    plain = model.detokenize(tokens, steps=3, generator=torch.Generator().manual_seed(7))
    guided = model.detokenize(tokens, steps=3, guidance_scale=3.0, generator=torch.Generator().manual_seed(7))
    assert not torch.allclose(plain, guided)


@pytest.mark.parametrize("overrides", [dict(), dict(prediction="velocity", nested_dropout=False), dict(repa_weight=0.5)])
def test_training_loss_backward(overrides, images):
    model = FlexTok(preset("micro", **overrides)).train()
    loss, logs = model.training_loss(images, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and "flow_loss" in logs
    assert model.encoder.registers.grad is not None  # tokens get gradient through FSQ
    metrics = model.validation_metrics(images, token_counts=[1, 8], steps=1)
    assert set(metrics) == {"psnr@1", "psnr@8"}


def test_kl_vae_stage_official_names(tmp_path):
    cfg = preset("micro", vae="kl", vae_latent_channels=4, vae_block_channels=(8, 8), vae_layers_per_block=1, image_size=16, patch_size=2)
    model = randomize(FlexTok(cfg))
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert model.to_latent(x).shape == (2, 4, 8, 8)
    names = set(to_official_state_dict(model))
    assert "vae.encoder.down_blocks.0.downsamplers.0.conv.weight" in names
    assert "vae.decoder.up_blocks.0.upsamplers.0.conv.weight" in names
    model.save_official(tmp_path / "o.safetensors")
    loaded = FlexTok.from_official(tmp_path / "o.safetensors", cfg)
    assert torch.equal(torch.stack(loaded.tokenize(x)), torch.stack(model.tokenize(x)))
    loss, _ = model.vae.training_loss(x)
    assert torch.isfinite(loss)


def test_vae_init_copies_a_trained_vae_and_saved_models_do_not_need_it(tmp_path):
    from modality_tokenizers.flextok.vae import KLAutoencoder

    vae_fields = dict(vae="kl", vae_latent_channels=4, vae_block_channels=(8, 8), vae_layers_per_block=1, vae_norm_groups=4)
    trained = randomize(KLAutoencoder(latent_channels=4, block_out_channels=(8, 8), layers_per_block=1, norm_num_groups=4))
    trained.save_pretrained(tmp_path / "vae")
    cfg = preset("micro", image_size=16, patch_size=2, vae_init=str(tmp_path / "vae"), **vae_fields)
    model = FlexTok(cfg)
    assert all(torch.equal(a, b) for a, b in zip(model.vae.state_dict().values(), trained.state_dict().values()))
    assert not any(p.requires_grad for p in model.vae.parameters())
    model.save_pretrained(tmp_path / "tok")
    (tmp_path / "vae" / "model.safetensors").unlink()  # a saved FlexTok carries its VAE
    loaded = FlexTok.from_pretrained(tmp_path / "tok")
    assert torch.equal(loaded.vae.decoder.conv_out.weight, trained.decoder.conv_out.weight)


def test_vae_init_names_a_missing_folder_or_another_architecture(tmp_path):
    from modality_tokenizers.flextok.vae import KLAutoencoder

    fields = dict(image_size=16, patch_size=2, vae="kl", vae_latent_channels=4, vae_block_channels=(8, 8), vae_layers_per_block=1)
    with pytest.raises(FileNotFoundError, match="vae_init"):
        FlexTok(preset("micro", vae_init=str(tmp_path / "absent"), **fields))
    KLAutoencoder(latent_channels=8, block_out_channels=(8, 8), layers_per_block=1).save_pretrained(tmp_path / "vae8")
    with pytest.raises(ValueError, match="latent_channels"):
        FlexTok(preset("micro", vae_init=str(tmp_path / "vae8"), **fields))


def test_nested_dropout_warm_up_keeps_all_tokens_until_its_start_step():
    from modality_tokenizers.flextok import FlexTok
    from modality_tokenizers.flextok.config import preset

    model = FlexTok(preset("micro", nested_dropout_start=5))
    x = torch.rand(8, 3, 16, 16) * 2 - 1
    _, logs = model.training_loss(x, torch.Generator().manual_seed(0))
    assert logs["keep_mean"] == model.max_tokens  # step 0 < 5: every register kept
    model.set_train_step(5)
    _, logs = model.training_loss(x, torch.Generator().manual_seed(0))
    assert logs["keep_mean"] < model.max_tokens  # nested dropout on
