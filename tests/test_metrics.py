"""eval/metrics, eval/image_metrics, eval/meters: hand-computed cases and parity with
torchmetrics / scikit-image on small random tensors."""
import math

import numpy as np
import pytest
import torch

from eval.image_metrics import psnr, reconstruction_metrics, ssim
from eval.meters import DepthMeter, NormalsMeter, ReconstructionMeter, SegmentationMeter
from eval.metrics import (angular_errors_deg, confusion_matrix, depth_metrics, normals_metrics,
                          segmentation_metrics)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- segmentation

def test_segmentation_hand_computed():
    target = torch.tensor([[0, 0, 1, 1, 2]])
    pred = torch.tensor([[0, 1, 1, 1, 2]])
    m = segmentation_metrics(pred, target, num_classes=4)
    # class 0: TP 1, union 2 -> 0.5; class 1: TP 2, union 3; class 2: 1; class 3 absent -> None
    assert m["per_class_iou"][:3] == pytest.approx([0.5, 2 / 3, 1.0]) and m["per_class_iou"][3] is None
    assert m["miou"] == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    assert m["pixel_acc"] == pytest.approx(4 / 5)
    assert confusion_matrix(pred, target, 4)[0].tolist() == [1, 1, 0, 0]  # rows = truth


def test_class_confusion_gives_each_true_class_its_share_of_predictions():
    target = torch.tensor([[0, 0, 1, 1, 1, 1]])
    pred = torch.tensor([[0, 1, 2, 2, 2, 1]])
    meter = SegmentationMeter(3, class_names=["floor", "sphere", "cube"])
    meter.update(pred, target)
    confusion = meter.compute()["confusion"]
    assert confusion == {"floor": {"floor": 0.5, "sphere": 0.5, "cube": 0.0},
                         "sphere": {"floor": 0.0, "sphere": 0.25, "cube": 0.75}}  # no true cube: no row


def test_segmentation_matches_torchmetrics_with_ignore_index():
    from torchmetrics.functional.classification import multiclass_accuracy, multiclass_jaccard_index

    pred = torch.randint(0, 5, (3, 16, 16), generator=gen(1))
    target = torch.randint(0, 5, (3, 16, 16), generator=gen(2))
    target[target == 3] = 4  # class 3 only predicted: IoU 0, still counted (it is in the prediction)
    target[:, :2] = 255
    ours = segmentation_metrics(pred, target, 5, ignore_index=255)
    ref_per_class = multiclass_jaccard_index(pred, target, 5, average="none", ignore_index=255)
    assert ours["per_class_iou"] == pytest.approx(ref_per_class.tolist(), abs=1e-6)
    assert ours["miou"] == pytest.approx(float(multiclass_jaccard_index(pred, target, 5, ignore_index=255)), abs=1e-6)
    ref_acc = multiclass_accuracy(pred, target, 5, average="micro", ignore_index=255)
    assert ours["pixel_acc"] == pytest.approx(float(ref_acc), abs=1e-6)


def test_segmentation_rejects_out_of_range_classes():
    with pytest.raises(ValueError, match="outside \\[0, 3\\)"):
        segmentation_metrics(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), 7), 3)


def test_segmentation_meter_equals_one_shot():
    pred = torch.randint(0, 6, (4, 8, 8), generator=gen(3))
    target = torch.randint(0, 6, (4, 8, 8), generator=gen(4))
    meter = SegmentationMeter(6, class_names=list("abcdef"))
    meter.update(pred[:2], target[:2])
    meter.update(pred[2:], target[2:])
    got, want = meter.compute(), segmentation_metrics(pred, target, 6)
    assert got["miou"] == pytest.approx(want["miou"]) and list(got["per_class_iou"]) == list("abcdef")


# ----------------------------------------------------------------------------- depth

def test_depth_hand_computed_ignores_invalid_pixels():
    target = torch.tensor([2.0, 4.0, 0.0, 1.0]).view(1, 1, 2, 2)
    pred = torch.tensor([2.0, 2.0, 9.0, 1.5]).view(1, 1, 2, 2)  # the 9.0 sits on invalid GT
    m = depth_metrics(pred, target)
    assert m["valid_pixels"] == 3
    assert m["abs_rel"] == pytest.approx((0 + 0.5 + 0.5) / 3)
    assert m["rmse"] == pytest.approx(math.sqrt((0 + 4 + 0.25) / 3))
    # ratios 1, 2, 1.5 -> below 1.25: 1; below 1.5625: 2 (1.5); below 1.953: 2; 2 fails all
    assert (m["delta1"], m["delta2"], m["delta3"]) == pytest.approx((1 / 3, 2 / 3, 2 / 3))


def test_depth_median_alignment_and_empty_mask():
    target = torch.rand(2, 1, 4, 4, generator=gen(5)) + 1
    assert depth_metrics(target * 3.0, target, align="median")["abs_rel"] == pytest.approx(0.0, abs=1e-6)
    empty = depth_metrics(target, torch.zeros_like(target))
    assert empty["abs_rel"] is None and empty["valid_pixels"] == 0


def test_depth_meter_equals_one_shot():
    target = torch.rand(4, 1, 6, 6, generator=gen(6)) * 5
    target[target < 0.5] = 0
    pred = target + torch.randn(4, 1, 6, 6, generator=gen(7)) * 0.3
    meter = DepthMeter()
    meter.update(pred[:1], target[:1])
    meter.update(pred[1:], target[1:])
    assert meter.compute() == pytest.approx(depth_metrics(pred, target))


# ----------------------------------------------------------------------------- normals

def test_normals_hand_computed():
    z = torch.tensor([0.0, 0.0, 1.0])
    x = torch.tensor([1.0, 0.0, 0.0])
    tilted = torch.tensor([0.0, math.sin(math.radians(20)), math.cos(math.radians(20))])
    target = torch.stack([z, z, z, torch.zeros(3)], dim=1).view(1, 3, 2, 2)  # last pixel: background
    pred = torch.stack([2 * z, tilted, x, x], dim=1).view(1, 3, 2, 2)  # scale must not matter
    errors = angular_errors_deg(pred, target)
    assert errors.tolist() == pytest.approx([0.0, 20.0, 90.0], abs=1e-5)
    m = normals_metrics(pred, target)
    assert m["mean_angle"] == pytest.approx(110 / 3, abs=1e-5) and m["median_angle"] == pytest.approx(20.0, abs=1e-5)
    assert (m["within_11.25"], m["within_22.5"], m["within_30"]) == pytest.approx((100 / 3, 200 / 3, 200 / 3))


def test_normals_background_as_decoded_from_png_is_invalid():
    from modality_tokenizers.raw import to_tensor

    png = np.full((2, 2, 3), 128, np.uint8)  # scenes encode background (0,0,0) as (128,128,128)
    png[0, 0] = (128, 128, 255)
    target = to_tensor("normal_map", [png])
    assert normals_metrics(target, target)["valid_pixels"] == 1


def test_normals_meter_close_to_one_shot():
    target = torch.nn.functional.normalize(torch.randn(3, 3, 8, 8, generator=gen(8)), dim=1)
    pred = target + 0.5 * torch.randn(3, 3, 8, 8, generator=gen(9))
    meter = NormalsMeter()
    meter.update(pred[:2], target[:2])
    meter.update(pred[2:], target[2:])
    got, want = meter.compute(), normals_metrics(pred, target)
    assert got["median_angle"] == pytest.approx(want["median_angle"], abs=NormalsMeter.BIN_DEG)
    assert got["mean_angle"] == pytest.approx(want["mean_angle"])
    assert got["within_22.5"] == pytest.approx(want["within_22.5"])


# ----------------------------------------------------------------------------- reconstruction

def test_psnr_and_ssim_match_torchmetrics():
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    target = torch.rand(3, 3, 24, 20, generator=gen(10)) * 2 - 1
    pred = (target + 0.2 * torch.randn(3, 3, 24, 20, generator=gen(11))).clamp(-1, 1)
    ref_psnr = peak_signal_noise_ratio(pred, target, data_range=2.0, dim=(1, 2, 3), reduction="none")
    assert psnr(pred, target).tolist() == pytest.approx(ref_psnr.tolist(), abs=1e-4)
    # torchmetrics 1.9 also averages the 5-pixel border it computes on reflect-padded images;
    # we (like scikit-image and Wang et al.) average only where the window fits: compare there.
    _, ref_map = structural_similarity_index_measure(pred, target, data_range=2.0, reduction="none",
                                                     return_full_image=True)  # (B, C, H, W)
    ref_ssim = ref_map[:, :, 5:-5, 5:-5].mean(dim=(1, 2, 3))
    assert ssim(pred, target).tolist() == pytest.approx(ref_ssim.tolist(), abs=1e-4)
    meter = ReconstructionMeter()
    meter.update(pred[:1], target[:1])
    meter.update(pred[1:], target[1:])
    assert meter.compute()["ssim"] == pytest.approx(float(ref_ssim.mean()), abs=1e-4)


def test_ssim_matches_skimage_on_a_real_photo():
    from skimage import data
    from skimage.metrics import structural_similarity

    image = data.astronaut()[::8, ::8].astype(np.float64) / 255.0  # (64, 64, 3) in [0, 1]
    noisy = np.clip(image + np.random.default_rng(0).normal(0, 0.05, image.shape), 0, 1)
    ref = structural_similarity(image, noisy, channel_axis=2, data_range=1.0, gaussian_weights=True,
                                sigma=1.5, use_sample_covariance=False)
    to_t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None]  # (1, 3, H, W)
    assert float(ssim(to_t(noisy), to_t(image), data_range=1.0)) == pytest.approx(ref, abs=1e-5)


def test_identical_images_give_finite_psnr_and_ssim_one():
    x = torch.rand(2, 3, 16, 16, generator=gen(12))
    m = reconstruction_metrics(x, x)
    assert m["psnr"] == pytest.approx(100.0) and m["ssim"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(x[:, :, :8, :8], x[:, :, :8, :8])
