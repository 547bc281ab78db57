"""The CUDA path, where a GPU is present (`pytest -m gpu`; skipped elsewhere, never in CI):
FourM micro training under DeepSpeed on one GPU (NCCL) in bf16 with ZeRO 0-3, fp32 on the GPU
against fp32 on the CPU, kill + resume on the GPU, FlexTok training in bf16 on the GPU, and
generation on the GPU (every scheme with a CPU generator, the KV cache, argmax agreement with CPU).

FOURM_GPU_TEST_DEVICE=cpu runs the same logic on a CPU, to check this file without a GPU."""
import math
import os

import pytest
import torch

from tests.test_fourm_train import config, loss_curve, make_env
from train.tokenizer_config import load_tokenizer_train_config

DEVICE = os.environ.get("FOURM_GPU_TEST_DEVICE", "cuda")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return make_env(tmp_path_factory.mktemp("fourm_gpu"))


# first: a ZeRO-3 engine patches torch's linear for the rest of the process
@pytest.mark.parametrize("zero_stage", [0, 3])
def test_flextok_trains_on_the_gpu_in_bf16_and_decodes_there(tmp_path, zero_stage):
    from modality_tokenizers import load_tokenizer
    from tests.test_flextok_trainer import CONFIG, make_rgb_shards
    from train.tokenizer_trainer import train_tokenizer

    make_rgb_shards(tmp_path / "raw")
    cfg = load_tokenizer_train_config(CONFIG, [f"data.train={tmp_path / 'raw/train'}", f"data.val={tmp_path / 'raw/val'}",
                                               f"out={tmp_path / 'run'}", "train.steps=4", "train.batch_size=4",
                                               f"engine.device={DEVICE}", "engine.precision=bf16",
                                               f"engine.zero_stage={zero_stage}"])
    result = train_tokenizer(cfg)
    assert result["step"] == 4 and all(math.isfinite(v) for k, v in result.items() if k.startswith("val/psnr"))
    tokenizer = load_tokenizer(tmp_path / "run").to(DEVICE)
    tokens = tokenizer.tokenize(torch.rand(2, 3, 16, 16) * 2 - 1)
    out = tokenizer.detokenize([tokens[0][:1], tokens[1]], steps=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 16, 16) and out.device.type == DEVICE and torch.isfinite(out).all()


def test_a_grid_tokenizer_trains_on_the_gpu_in_bf16_resumes_and_loads(tmp_path):
    from modality_tokenizers.base import load_tokenizer
    from tests.test_tokenizer_trainer import CONFIG, make_shards, overrides
    from train.tokenizer_trainer import train_tokenizer

    make_shards(tmp_path / "raw")
    gpu = [f"engine.device={DEVICE}", "engine.precision=bf16"]
    first = train_tokenizer(load_tokenizer_train_config(CONFIG, overrides(tmp_path, 4) + gpu))
    resumed = train_tokenizer(load_tokenizer_train_config(CONFIG, overrides(tmp_path, 6) + gpu))
    assert first["step"] == 4 and resumed["step"] == 6 and math.isfinite(resumed["val/ce"])
    tokenizer = load_tokenizer(tmp_path / "run")
    assert tokenizer.vocab_size == 1000


@pytest.mark.parametrize("zero_stage", [0, 1, 2, 3])
def test_fourm_trains_on_the_gpu_in_bf16_under_each_zero_stage_and_loads(env, tmp_path, zero_stage):
    from fourm.model import FourM
    from train.fourm_trainer import train

    cfg = config(env, run_dir=str(tmp_path / "run"), steps=6, val_every=0,
                 engine__device=DEVICE, engine__precision="bf16", engine__zero_stage=zero_stage)
    last = train(cfg)
    curve = loss_curve(tmp_path / "run")
    assert list(curve) == [1, 2, 3, 4, 5, 6] and all(math.isfinite(v) for v in curve.values())
    assert last["loss"] < curve[1], curve  # lr 3e-3 on 24 samples: it must learn within 6 steps
    model = FourM.from_pretrained(tmp_path / "run" / "model")
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())


def test_fp32_on_the_gpu_follows_the_cpu_loss_curve(env, tmp_path):
    from train.fourm_trainer import train

    curves = {}
    for device in (DEVICE, "cpu"):
        train(config(env, run_dir=str(tmp_path / device), steps=4, val_every=0, engine__device=device))
        curves[device] = loss_curve(tmp_path / device)
    # TF32 is off by default for matmuls in PyTorch; what remains is summation order
    assert list(curves[DEVICE].values()) == pytest.approx(list(curves["cpu"].values()), rel=2e-3)


def test_kill_and_resume_on_the_gpu_gives_the_uninterrupted_curve(env, tmp_path):
    from train.fourm_trainer import train

    train(config(env, run_dir=str(tmp_path / "full"), engine__device=DEVICE))
    cut = config(env, run_dir=str(tmp_path / "cut"), engine__device=DEVICE)
    train(cut, stop_after=3)
    train(cut)
    a, b = loss_curve(tmp_path / "full"), loss_curve(tmp_path / "cut")
    assert list(a) == list(b) == [1, 2, 3, 4, 5, 6]
    assert list(b.values()) == pytest.approx(list(a.values()), rel=1e-3)  # GPU scatter-adds are not bit-exact


def _on(device, conds):
    return {k: v.to(device) for k, v in conds.items()}


@pytest.mark.parametrize("case", range(7))
def test_every_scheme_generates_on_the_gpu_with_a_cpu_generator(case):
    from tests.test_generation import CASES, VOCAB, conditions, generate

    model, target, conds, scheme, length = CASES[case]
    model = model.to(DEVICE)
    try:
        num_tokens = None if target in ("depth", "semseg") else length
        ids = generate(model, target, _on(DEVICE, conditions(*conds)), scheme=scheme, steps=4, num_tokens=num_tokens,
                       cfg_scale=2.0, temperature=1.0, top_p=0.9)
        assert ids.shape == (2, length) and bool(((ids >= 0) & (ids < VOCAB[target])).all())
    finally:
        model.to("cpu")  # the shared test models stay on the CPU for other test files


def test_the_kv_cache_on_the_gpu_gives_the_tokens_of_full_reruns():
    from tests.test_generation import CAUSAL_RGB_MODEL, conditions, generate

    model = CAUSAL_RGB_MODEL.to(DEVICE)
    try:
        conds = _on(DEVICE, conditions("depth", "semseg"))
        kw = dict(scheme="autoregressive", num_tokens=12, temperature=1.0, top_k=20, cfg_scale=2.5)
        assert torch.equal(generate(model, "rgb", conds, use_cache=True, **kw),
                           generate(model, "rgb", conds, use_cache=False, **kw))
    finally:
        model.to("cpu")


def test_one_pass_argmax_on_the_gpu_agrees_with_the_cpu():
    from tests.test_generation import MODEL, conditions, generate

    conds = conditions("rgb", "caption")
    kw = dict(scheme="maskgit", steps=1, temperature=0.0)
    on_cpu = generate(MODEL, "depth", conds, **kw)
    try:
        on_gpu = generate(MODEL.to(DEVICE), "depth", _on(DEVICE, conds), **kw).cpu()
    finally:
        MODEL.to("cpu")
    assert (on_gpu == on_cpu).float().mean() >= 0.95  # near-ties may flip under another summation order
