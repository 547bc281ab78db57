"""Fine-tuning at micro scale on synthetic token shards: adding a modality keeps the old weights
where it should and trains the new ones; a frozen trunk stays bit-identical; LoRA merges into
a plain FourM with the same outputs; the task masking is fixed; bad configs fail early."""
import copy

import pytest
import torch

from fourm.config import ConfigError, from_dict, save_config
from fourm.data import synthetic_specs, synthetic_text_tokenizer, write_synthetic_token_shards
from fourm.modalities import ModalitySpec

NORMALS = ModalitySpec("normals", "image_grid", "normal_map", 256, 16, "normals.png", "", grid_size=(4, 4))


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Modality YAMLs (with normals), a text tokenizer, token shards with normals, a base micro FourM without."""
    from fourm.model import FourM, preset_config

    root = tmp_path_factory.mktemp("finetune")
    specs = synthetic_specs()
    (root / "modalities").mkdir()
    for spec in [*specs, NORMALS]:
        save_config(spec, root / "modalities" / f"{spec.name}.yaml")
    synthetic_text_tokenizer().save_pretrained(root / "tok")
    write_synthetic_token_shards(root / "train", [*specs, NORMALS], num_shards=1, samples_per_shard=16, seed=0)
    write_synthetic_token_shards(root / "val", [*specs, NORMALS], num_shards=1, samples_per_shard=8, seed=1)
    torch.manual_seed(0)
    FourM(preset_config("micro", specs)).save_pretrained(root / "base")
    return {
        "root": root,
        "data": {
            "run_dir": str(root / "run"), "base_model": str(root / "base"), "modality_folder": str(root / "modalities"),
            "add_modalities": ["normals"], "frozen_steps": 2, "steps": 0, "log_every": 1, "checkpoint_every": 0,
            "progress": False, "engine": {"device": "cpu", "lr": 3e-3, "seed": 0},
            "data": {"train": [{"shards": str(root / "train")}], "val": [{"shards": str(root / "val")}],
                     "batch_size": 4, "shuffle_buffer": 4, "masking": "configs/masking/micro.yaml",
                     "text_tokenizers": {"caption": str(root / "tok")}, "val_samples": 4, "val_batch_size": 4,
                     "val_directions": [{"inputs": ["rgb"], "targets": ["normals"]}]},
        },
    }


def config(env, **changes):
    from train.finetune_config import FinetuneConfig

    data = copy.deepcopy(env["data"])
    data.update(changes)
    return from_dict(FinetuneConfig, data)


def state(folder):
    from fourm.model import FourM

    return FourM.from_pretrained(folder).state_dict()


def test_frozen_stage_trains_only_the_new_modality(env, tmp_path):
    from train.finetune import finetune

    finetune(config(env, run_dir=str(tmp_path / "run")))
    base, tuned = state(env["root"] / "base"), state(tmp_path / "run" / "model")
    new = [k for k in tuned if k.startswith(("embeddings.normals.", "heads.normals."))]
    assert new and set(tuned) == set(base) | set(new)
    for k, v in base.items():  # trunk and old modalities: bit-identical
        assert torch.equal(v, tuned[k]), k
    init = state(tmp_path / "run" / "stage1" / "model")  # same as final here; compare to a fresh init instead
    torch.manual_seed(0)
    from fourm.model import FourM
    from train.finetune_model import extend_model

    fresh, _ = extend_model(FourM.from_pretrained(env["root"] / "base"), [NORMALS])
    fresh_state = fresh.state_dict()
    assert any(not torch.equal(fresh_state[k], tuned[k]) for k in new), "the new parameters did not train"
    assert torch.equal(init["heads.normals.weight"], tuned["heads.normals.weight"])


def test_full_stage_after_frozen_changes_the_trunk(env, tmp_path):
    from train.finetune import finetune

    finetune(config(env, run_dir=str(tmp_path / "run"), steps=2))
    base, stage1, tuned = state(env["root"] / "base"), state(tmp_path / "run" / "stage1" / "model"), state(tmp_path / "run" / "model")
    trunk = [k for k in base if k.startswith(("encoder.", "decoder."))]
    assert all(torch.equal(base[k], stage1[k]) for k in trunk)
    assert any(not torch.equal(base[k], tuned[k]) for k in trunk)


def test_lora_run_exports_a_plain_fourm(env, tmp_path):
    from train.finetune import finetune

    finetune(config(env, run_dir=str(tmp_path / "run"), frozen_steps=0, steps=2, method="lora",
                    lora={"rank": 2, "alpha": 4.0}))
    base, tuned = state(env["root"] / "base"), state(tmp_path / "run" / "model")
    assert not any("lora" in k for k in tuned)  # from_pretrained(strict) loaded it as a plain FourM
    assert any(not torch.equal(base[k], tuned[k]) for k in base if k.endswith("attn.to_q.weight"))
    # LoRA trains only adapters (merged into trunk linears) and the new modality: norms and old embeddings stay.
    assert all(torch.equal(base[k], tuned[k]) for k in base if "norm" in k or k.startswith("embeddings.rgb."))


def test_lora_merge_equals_the_unmerged_forward():
    from fourm.masking import collate
    from fourm.fixed_masking import FixedMasker
    from fourm.model import FourM, preset_config
    from fourm.model.lora import LoRALinear, apply_lora, merge_lora

    specs = synthetic_specs()[:3]
    torch.manual_seed(0)
    model = FourM(preset_config("micro", specs)).eval()
    names = apply_lora(model, rank=4, alpha=8.0)
    assert names and all(isinstance(m, LoRALinear) for n, m in model.named_modules() if n.endswith(("to_q", "down")))
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("lora_b"):
                p.normal_(std=0.1)  # a trained adapter (B = 0 would make the test trivial)
    gen = torch.Generator().manual_seed(0)
    sample = {s.name: torch.randint(0, s.vocab_size, (s.max_tokens,), generator=gen).numpy() for s in specs}
    batch = collate([FixedMasker(specs, ["rgb"], ["depth", "semseg"])(sample)], [s.name for s in specs])
    with torch.no_grad():
        before = model.target_logits(batch)
        merge_lora(model)
        after = model.target_logits(batch)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    for name in before:
        torch.testing.assert_close(before[name], after[name], rtol=1e-5, atol=1e-5)


def test_task_masking_is_fixed():
    from fourm.fixed_masking import FixedMasker

    specs = synthetic_specs()
    masker = FixedMasker(specs, ["rgb"], ["semseg"])
    sample = {s.name: torch.arange(s.max_tokens).numpy() % s.vocab_size for s in specs if s.kind != "text"}
    outs = [masker(sample, torch.Generator().manual_seed(seed)) for seed in range(3)]
    for out in outs:
        assert set(out) == {"rgb", "semseg"}
        assert bool(out["rgb"].is_input.all()) and not bool(out["rgb"].is_target.any())
        assert bool(out["semseg"].is_target.all()) and not bool(out["semseg"].is_input.any())
        assert torch.equal(out["semseg"].ids, outs[0]["semseg"].ids)
    assert masker({"rgb": sample["rgb"]}) == {}  # a sample without the target takes no part
    with pytest.raises(ValueError, match="'normals' is not in the model"):
        FixedMasker(specs, ["rgb"], ["normals"])


def test_bad_configs_fail_before_any_work(env, tmp_path):
    from train.finetune import check_config
    from train.finetune_config import load_finetune_config

    with pytest.raises(ConfigError, match="stpes"):
        config(env, stpes=3)
    with pytest.raises(ValueError, match="frozen_steps > 0"):
        config(env, add_modalities=[])
    with pytest.raises(ValueError, match="already in the base model"):
        check_config(config(env, add_modalities=["depth"]))
    with pytest.raises(ValueError, match="task: modality 'sketch'"):
        check_config(config(env, task={"inputs": ["rgb"], "targets": ["sketch"]}))
    with pytest.raises(FileNotFoundError, match="not a saved FourM"):
        check_config(config(env, base_model=str(tmp_path / "nothing")))
    for path in ("configs/finetune/normals.yaml", "configs/finetune/rgb_to_semseg.yaml"):
        load_finetune_config(path)


def test_cli_gives_one_line_errors(env, tmp_path, capsys):
    from fourm.cli import main

    assert main(["finetune", "--config", "configs/finetune/normals.yaml", "stpes=3"]) == 1
    assert "unknown key 'stpes'" in capsys.readouterr().err
    assert main(["finetune", "--config", "configs/finetune/normals.yaml", f"base_model={tmp_path / 'none'}"]) == 1
    assert "not a saved FourM" in capsys.readouterr().err
