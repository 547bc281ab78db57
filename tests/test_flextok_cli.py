"""`fourm flextok reconstruct` on a micro FlexTok saved by the test: grid PNG, one line per count,
and clear errors for a bad token count or an unreadable image."""
import numpy as np
import pytest
from PIL import Image

from fourm.cli import main


@pytest.fixture(scope="module")
def micro_tokenizer(tmp_path_factory):
    from modality_tokenizers.flextok import FlexTok, preset

    folder = tmp_path_factory.mktemp("tok") / "rgb"
    FlexTok(preset("micro")).save_pretrained(folder)
    return folder


def test_reconstruct_writes_a_grid(micro_tokenizer, tmp_path, capsys):
    image = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "grid.png"
    assert main(["flextok", "reconstruct", str(image), "--tokenizer", str(micro_tokenizer), "--tokens", "1,2",
                 "--steps", "2", "--out", str(out)]) == 0
    grid = Image.open(out)
    assert grid.width == 3 * grid.height  # input + 2 token counts, one row
    assert "   1 tokens: PSNR" in capsys.readouterr().out


def test_bad_inputs_are_named(micro_tokenizer, tmp_path, capsys):
    image = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    assert main(["flextok", "reconstruct", str(image), "--tokenizer", str(micro_tokenizer), "--tokens", "0,999"]) == 1
    assert "counts must lie in 1.." in capsys.readouterr().err
    bad = tmp_path / "b.png"
    bad.write_text("not an image")
    assert main(["flextok", "reconstruct", str(bad), "--tokenizer", str(micro_tokenizer), "--tokens", "1"]) == 1
    assert "b.png: not a readable image" in capsys.readouterr().err
