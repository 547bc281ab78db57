"""Grid tokenizers on micro configs: shapes, save/load round trip, metric depth, codecs by data kind."""
import pytest
import torch
import torch.nn.functional as F

from modality_tokenizers.grid import GridTokenizer
from modality_tokenizers.grid.metrics import evaluate_reconstruction


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: threads only add overhead (and contend on a shared CPU)
    yield
    torch.set_num_threads(before)


def micro(data: str, **kw) -> GridTokenizer:
    torch.manual_seed(0)
    cfg = GridTokenizer.Config(data=data, image_size=32, patch_size=8, width=32, depth=1, heads=2,
                               stem_channels=8, levels=(4, 4, 3), num_classes=5 if data == "class_map" else 0,
                               depth_log_mean=1.5, depth_log_std=0.3, **kw)
    return GridTokenizer(cfg)


def raw_batch(data: str, gen: torch.Generator, batch: int = 3, size: int = 32) -> torch.Tensor:
    if data == "depth_map":
        depth = torch.exp(1.5 + 0.3 * torch.randn(batch, 1, size, size, generator=gen))
        depth[:, :, :4] = 0.0  # a band of invalid pixels
        return depth
    if data == "class_map":
        return torch.randint(0, 5, (batch, size, size), generator=gen)
    if data == "normal_map":
        return F.normalize(torch.randn(batch, 3, size, size, generator=gen), dim=1)
    return torch.rand(batch, 3, size, size, generator=gen) * 2 - 1


@pytest.mark.parametrize("data", ["depth_map", "class_map", "normal_map", "image_rgb"])
def test_encode_decode_shapes(data):
    tok = micro(data)
    x = raw_batch(data, torch.Generator().manual_seed(1))
    ids = tok.encode(x)
    assert ids.shape == (3, 16) and ids.dtype == torch.int64
    assert tok.max_tokens == 16 and tok.grid_size == (4, 4) and tok.vocab_size == 48
    assert 0 <= ids.min() and ids.max() < tok.vocab_size
    out = tok.decode(ids)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(tok.decode(ids.view(3, 4, 4)), out)  # (B, h, w) ids work too


@pytest.mark.parametrize("data", ["depth_map", "class_map", "normal_map"])
def test_save_load_round_trip_gives_identical_tokens(tmp_path, data):
    from modality_tokenizers.base import load_tokenizer

    tok = micro(data).eval()
    x = raw_batch(data, torch.Generator().manual_seed(2))
    tok.save_pretrained(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert isinstance(loaded, GridTokenizer) and loaded.config == tok.config
    ids = tok.encode(x)
    assert torch.equal(loaded.encode(x), ids)
    assert torch.equal(loaded.decode(ids), tok.decode(ids))


def test_depth_decodes_to_metres_and_invalid_to_zero():
    tok = micro("depth_map")
    out = torch.zeros(1, 2, 32, 32)
    out[:, 0] = 1.0  # one std above the log mean
    out[:, 1, :, :16] = 5.0  # valid on the left half
    out[:, 1, :, 16:] = -5.0
    depth = tok.codec.to_batch(out)
    assert depth[0, 0, 0, 0].item() == pytest.approx(torch.exp(torch.tensor(1.8)).item(), rel=1e-5)
    assert (depth[..., 16:] == 0).all()
    decoded = tok.decode(tok.encode(raw_batch("depth_map", torch.Generator().manual_seed(3))))
    assert decoded.min() >= 0 and decoded.max() < 1e3  # metres, not normalised units


def test_training_reduces_loss_and_metrics_report_usage():
    tok = micro("class_map")
    gen = torch.Generator().manual_seed(4)
    x = torch.zeros(4, 32, 32, dtype=torch.long)
    x[:, 8:24, 8:24] = 2  # a square: easy to learn
    opt = torch.optim.AdamW(tok.parameters(), lr=5e-3)
    first = None
    for _ in range(15):
        loss, metrics = tok.training_loss(x, generator=gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.5 * first
    assert set(tok.validation_metrics(x)) >= {"loss", "ce", "pixel_acc", "code_usage_batch"}
    result = evaluate_reconstruction(tok, [x])
    assert 0 < result["codebook_usage"] <= 1 and 0 <= result["miou"] <= 1


def test_bad_inputs_are_named():
    tok = micro("class_map")
    with pytest.raises(ValueError, match="outside 0..4"):
        tok.encode(torch.full((1, 32, 32), 7))
    with pytest.raises(ValueError, match="32x32"):
        tok.encode(torch.zeros(1, 16, 16, dtype=torch.long))
    with pytest.raises(ValueError, match="num_classes"):
        GridTokenizer.Config(data="class_map")


@pytest.mark.parametrize("data", ["depth_map", "class_map", "image_rgb"])
def test_local_encoder_codes_depend_on_the_cell_alone(data):
    tok = micro(data, local_encoder=True).eval()
    x = raw_batch(data, torch.Generator().manual_seed(3), batch=2)  # (B, [C,] 32, 32): 4x4 cells of 8 px
    changed = x.clone()
    changed[..., 8:, :] = x.flip(0)[..., 8:, :]  # every cell below the first row changes
    changed[..., :8, 8:16] = x[..., :8, 0:8]  # cell (0, 1) becomes a copy of cell (0, 0)
    ids, new = tok.encode(x).view(2, 4, 4), tok.encode(changed).view(2, 4, 4)
    assert torch.equal(new[:, 0, 0], ids[:, 0, 0]) and torch.equal(new[:, 0, 2:], ids[:, 0, 2:])
    assert torch.equal(new[:, 0, 1], ids[:, 0, 0])  # the same pixels give the same code anywhere
    # The global encoder mixes the cells: the same edit changes the untouched cells' codes.
    global_tok = micro(data).eval()
    before, after = global_tok.encode(x).view(2, 4, 4), global_tok.encode(changed).view(2, 4, 4)
    assert not torch.equal(after[:, 0], before[:, 0])
