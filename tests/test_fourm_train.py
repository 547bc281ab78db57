"""FourM training at micro scale on synthetic token shards: a run logs per-modality and
per-direction losses and saves a loadable model; kill + resume gives the uninterrupted loss curve;
ZeRO 1/2/3 on 2 CPU processes reach the same loss. This file is also the torchrun worker."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def make_env(root: Path) -> dict:
    """Synthetic modalities, text tokenizer and token shards under `root`; returns config data."""
    from fourm.config import save_config
    from fourm.data import synthetic_specs, synthetic_text_tokenizer, write_synthetic_token_shards

    specs = synthetic_specs()
    (root / "modalities").mkdir(parents=True, exist_ok=True)
    for spec in specs:
        save_config(spec, root / "modalities" / f"{spec.name}.yaml")
    synthetic_text_tokenizer().save_pretrained(root / "tok")
    write_synthetic_token_shards(root / "train", specs, num_shards=2, samples_per_shard=24, seed=0)
    write_synthetic_token_shards(root / "val", specs, num_shards=1, samples_per_shard=8, seed=1)
    return {
        "run_dir": str(root / "run"), "steps": 6, "log_every": 1, "val_every": 3, "checkpoint_every": 2, "progress": False,
        "model": {"preset": "micro", "modality_folder": str(root / "modalities")},
        "engine": {"device": "cpu", "lr": 3e-3, "warmup_steps": 2, "seed": 0},
        "data": {"train": [{"shards": str(root / "train")}], "val": [{"shards": str(root / "val")}],
                 "batch_size": 4, "shuffle_buffer": 8, "masking": "configs/masking/micro.yaml",
                 "text_tokenizers": {"caption": str(root / "tok")}, "val_samples": 8, "val_batch_size": 8,
                 "val_directions": [{"inputs": ["rgb"], "targets": ["depth"]}, {"inputs": [], "targets": ["depth"]}]},
    }


def config(data: dict, **changes):
    import copy

    from fourm.config import from_dict
    from train.fourm_config import FourMTrainConfig

    data = copy.deepcopy(data)
    for key, value in changes.items():
        node, *path = key.split("__")
        target = data
        for part in [node, *path][:-1]:
            target = target[part]
        target[[node, *path][-1]] = value
    return from_dict(FourMTrainConfig, data)


def loss_curve(run_dir) -> dict[int, float]:
    """step -> training loss, the last record for each step (a resumed run re-logs a step)."""
    curve = {}
    for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "loss" in record:
            curve[record["step"]] = record["loss"]
    return curve


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return make_env(tmp_path_factory.mktemp("fourm_train"))


def test_micro_run_logs_losses_and_saves_a_loadable_model(env, tmp_path):
    from fourm.model import FourM
    from train.fourm_trainer import train

    last = train(config(env, run_dir=str(tmp_path / "run")))
    records = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert all(r["tokens_per_s"] > 0 for r in records if "loss" in r)
    assert any(k.startswith("loss/") for k in records[0])
    assert "val/rgb->depth" in last and "val/none->depth" in last and "val/mixed/depth" in last
    model = FourM.from_pretrained(tmp_path / "run" / "model")
    assert model.config.dim == 32


def test_kill_and_resume_gives_the_uninterrupted_loss_curve(env, tmp_path):
    from train.fourm_trainer import train

    full = config(env, run_dir=str(tmp_path / "full"))
    train(full)
    cut = config(env, run_dir=str(tmp_path / "cut"))
    train(cut, stop_after=3)  # "killed" after step 3; the last checkpoint is step 2
    assert (tmp_path / "cut" / "checkpoints" / "latest").read_text().strip() == "step00000002"
    train(cut)
    a, b = loss_curve(tmp_path / "full"), loss_curve(tmp_path / "cut")
    assert list(a) == list(b) == [1, 2, 3, 4, 5, 6]
    assert list(b.values()) == pytest.approx(list(a.values()), rel=1e-5)


def worker(root: str, out_path: str) -> None:
    """Under torchrun: the same micro run with ZeRO stages 0-3; rank 0 writes the final losses."""
    from train.engine import is_main
    from train.fourm_trainer import train

    env = json.loads(Path(root, "env.json").read_text())
    final = {}
    for stage in (0, 1, 2, 3):
        cfg = config(env, run_dir=f"{root}/zero{stage}", steps=4, val_every=0, engine__zero_stage=stage)
        final[stage] = train(cfg)["loss"]
    if is_main():
        Path(out_path).write_text(json.dumps(final))


@pytest.mark.slow
def test_zero_stages_on_two_processes_reach_the_same_loss(env, tmp_path):
    Path(tmp_path, "env.json").write_text(json.dumps(env))
    out = tmp_path / "final.json"
    run_env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), DS_ACCELERATOR="cpu")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__, str(tmp_path), str(out)]
    proc = subprocess.run(cmd, cwd=REPO, env=run_env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    final = {int(k): v for k, v in json.loads(out.read_text()).items()}
    for stage in (1, 2, 3):
        assert final[stage] == pytest.approx(final[0], rel=1e-4), final


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    worker(sys.argv[1], sys.argv[2])
