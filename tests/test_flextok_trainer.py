"""FlexTok trains through the generic tokenizer trainer (the same one as the grid tokenizers),
resizing 24 px data to the micro model's 16 px, and the saved tokenizer loads and detokenizes
token lists of mixed lengths."""
import numpy as np
import torch

from fourm.shards import write_shard_atomic
from train.tokenizer_config import load_tokenizer_train_config

CONFIG = "configs/tokenizers/flextok_micro.yaml"


def make_rgb_shards(folder, size=24):
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        samples = [{"__key__": f"{split}_{i}", "rgb.png": rng.integers(0, 256, (size, size, 3), dtype=np.uint8)}
                   for i in range(10)]
        write_shard_atomic(folder / split / "shard-000000.tar", samples)


def test_flextok_trains_with_the_generic_trainer_and_loads(tmp_path):
    from modality_tokenizers import load_tokenizer
    from train.tokenizer_trainer import train_tokenizer

    make_rgb_shards(tmp_path / "raw")
    cfg = load_tokenizer_train_config(CONFIG, [f"data.train={tmp_path / 'raw/train'}", f"data.val={tmp_path / 'raw/val'}",
                                               f"out={tmp_path / 'run'}", "train.steps=2", "train.batch_size=4"])
    result = train_tokenizer(cfg)
    assert result["step"] == 2 and any(k.startswith("val/psnr") for k in result)
    tokenizer = load_tokenizer(tmp_path / "run")
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    tokens = tokenizer.tokenize(images)
    out = tokenizer.detokenize([tokens[0][:1], tokens[1]], steps=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 16, 16) and torch.isfinite(out).all()
