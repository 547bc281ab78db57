"""eval/visuals and eval/report: colourising rules, grid layout, plots and the HTML report."""
import re

import numpy as np
import pytest
import torch
from PIL import Image

from eval.report import Figure, Section, Table, render_report, write_report
from eval.visuals import (class_palette, colorize_classes, colorize_depth, legend_image, make_grid,
                          normals_to_rgb, rgb_to_uint8, text_tile, write_grid, write_line_plot)


def test_colorize_depth_blacks_out_invalid_and_orders_near_far():
    depth = torch.tensor([[[1.0, 2.0], [0.0, float("nan")]]])  # (1, H, W): two invalid pixels
    rgb = colorize_depth(depth, vmin=1.0, vmax=2.0)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    assert (rgb[1] == 0).all() and (rgb[0] != 0).any(axis=-1).all()
    assert not np.array_equal(rgb[0, 0], rgb[0, 1])
    masked = colorize_depth(depth, valid=np.array([[False, True], [True, True]]))
    assert (masked[0, 0] == 0).all() and (masked[0, 1] != 0).any()


def test_class_palette_is_fixed_and_distinct():
    palette = class_palette(40)
    assert np.array_equal(palette, class_palette(40)) and np.array_equal(palette[:6], class_palette(6))
    assert tuple(palette[0]) == (0, 0, 0) and len({tuple(c) for c in palette}) == 40
    classes = np.array([[0, 1], [2, 5]])
    assert np.array_equal(colorize_classes(classes, class_palette(6)), class_palette(6)[classes])
    with pytest.raises(ValueError, match="palette has 6 colours"):
        colorize_classes(np.array([[9]]), class_palette(6))
    legend = legend_image(["background", "floor", "sphere"])
    assert legend.shape[1] == 160 and legend.shape[0] >= 3 * 14


def test_normals_and_rgb_conversions():
    n = torch.zeros(3, 2, 2)
    n[2, 0, 0] = 1.0  # facing the camera; the other pixels are background
    rgb = normals_to_rgb(n)
    assert tuple(rgb[0, 0]) == (128, 128, 255) and (rgb[1] == 0).all()
    assert np.array_equal(normals_to_rgb(n.permute(1, 2, 0).numpy()), rgb)
    image = torch.tensor([-1.0, 0.0, 1.0]).view(3, 1, 1).expand(3, 2, 2)
    assert tuple(rgb_to_uint8(image)[0, 0]) == (0, 128, 255)


def test_grid_layout_with_text_tiles(tmp_path):
    image = np.zeros((8, 8, 3), np.uint8)
    rows = [[image, np.ones((8, 8), np.uint8) * 200, "a red cube left of a blue sphere"], [image, None, "x"]]
    grid = make_grid(rows, ["input", "prediction", "caption"], ["s0", "s1"], tile_size=(32, 32))
    assert grid.shape[0] == 16 + 2 * (32 + 4) + 4 and grid.dtype == np.uint8
    path = write_grid(tmp_path / "g" / "grid.png", rows, ["input", "prediction", "caption"], tile_size=(32, 32))
    assert np.array_equal(np.asarray(Image.open(path)).shape[1:], (3 * 36 + 4, 3))
    assert not list(tmp_path.rglob("*.tmp"))
    assert (text_tile("word " * 200, (40, 60)) < 255).any()  # long text is cut, not an error
    with pytest.raises(ValueError, match="colourise"):
        make_grid([[np.zeros((4, 4, 3), np.float32)]])


def test_line_plot_writes_png(tmp_path):
    path = write_line_plot(tmp_path / "psnr.png", {"FlexTok": ([1, 2, 4, 8], [14.0, 16.5, 19.0, 21.0])},
                           "tokens", "PSNR (dB)", title="reconstruction", log_x=True)
    assert Image.open(path).size == (500, 350)


def test_report_links_images_relatively_and_escapes(tmp_path):
    (tmp_path / "img").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "img" / "a.png")
    sections = [Section("rgb -> semseg <val>", text="first\n\nsecond",
                        images=[Figure(tmp_path / "img" / "a.png", "input / pred / gt")],
                        tables=[Table("scores", {"FourM": {"miou": 0.612345, "steps": 300},
                                                 "U-Net": {"miou": None, "abs_rel": 0.1}})])]
    path = write_report(tmp_path / "report.html", "Report & co", sections)
    text = path.read_text()
    assert 'src="img/a.png"' in text and "Report &amp; co" in text and "&lt;val&gt;" in text
    assert "<td>0.6123</td>" in text and "<td>300</td>" in text and text.count("<p>") == 2
    assert re.search(r"<th>miou</th><th>steps</th><th>abs_rel</th>", text)
    assert not (tmp_path / "report.html.tmp").exists()
    with pytest.raises(FileNotFoundError, match="missing.png"):
        write_report(tmp_path / "r2.html", "x", [Section("s", images=[Figure(tmp_path / "missing.png")])])
    assert "<h1>t</h1>" in render_report("t", [])
