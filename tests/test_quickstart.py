"""The quickstart's stage bookkeeping: what reruns when a stage's inputs change."""
import fourm.quickstart as qs


def test_every_stage_needs_only_earlier_stages():
    seen = set()
    for stage in qs.STAGES:
        assert set(stage.needs) <= seen, f"{stage.name} needs a later or unknown stage"
        seen.add(stage.name)


def test_a_rerun_stage_reruns_what_reads_it_and_nothing_else(tmp_path, monkeypatch):
    config, runs = tmp_path / "a.yaml", []
    config.write_text("steps: 1\n")

    def stage(name, needs=(), configs=tuple):
        return qs.Stage(name, lambda size, out: runs.append(name) or {}, configs=configs, needs=needs)

    stages = (stage("a", configs=lambda: (str(config),)), stage("b"), stage("c", needs=("a",)),
              stage("d", needs=("c", "b")))
    monkeypatch.setattr(qs, "STAGES", stages)
    qs.run_quickstart(tmp_path / "out", parallel=False)
    assert runs == ["a", "b", "c", "d"]
    runs.clear()
    config.write_text("steps: 2\n")
    qs.run_quickstart(tmp_path / "out", parallel=False)
    assert runs == ["a", "c", "d"]  # b reads nothing of a's
    runs.clear()
    (tmp_path / "out/stages/b.json").unlink()  # b lost its marker: it runs alone, then d follows
    qs.run_quickstart(tmp_path / "out", only=("b",), parallel=False)
    qs.run_quickstart(tmp_path / "out", parallel=False)
    assert runs == ["b", "d"]


def test_a_stage_runs_in_its_own_process_and_is_skipped_next_time(tmp_path, monkeypatch):
    """The parallel path end to end on the smallest real stage: the scenes of `--small`."""
    monkeypatch.chdir(tmp_path)  # the stage writes data/scenes under the working directory
    results = qs.run_quickstart("out", small=True, only=("scenes",))
    log_file = tmp_path / "out/logs/scenes.log"
    assert (tmp_path / "out/stages/scenes.json").is_file() and log_file.is_file()
    assert results["scenes"]["samples"] and (tmp_path / "data/scenes/val").is_dir()
    written = log_file.stat().st_mtime_ns
    qs.run_quickstart("out", small=True, only=("scenes",))
    assert log_file.stat().st_mtime_ns == written  # done before: no process started


def test_an_unknown_stage_name_is_an_error_naming_it(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="'rgb'.*stages: scenes"):
        qs.run_quickstart(tmp_path / "out", only=("scenes", "rgb"), parallel=False)
    assert not (tmp_path / "out").exists()  # nothing ran, nothing written


def test_scenes_made_before_a_file_kind_was_added_are_rendered_again(tmp_path, monkeypatch):
    """A data/scenes whose manifest lacks a file kind the generator now writes (colorseg) is
    rendered again, not resumed as complete."""
    import json

    from fourm.shards import iter_samples, list_shards

    monkeypatch.chdir(tmp_path)
    size = qs.QuickstartSize(train_samples=4, val_samples=2, resolution=16)
    qs.stage_scenes(size, tmp_path / "out")
    manifest = tmp_path / "data/scenes/manifest.json"
    old = json.loads(manifest.read_text())
    old["files"].remove("colorseg.png")  # as written before colorseg existed
    manifest.write_text(json.dumps(old))
    for shard in list_shards(tmp_path / "data/scenes/val"):
        drop_members(shard, ".colorseg.png")
    assert not any("colorseg" in s for s in iter_samples(list_shards(tmp_path / "data/scenes/val")))
    qs.stage_scenes(size, tmp_path / "out")
    assert "colorseg.png" in json.loads(manifest.read_text())["files"]
    assert all("colorseg" in s for s in iter_samples(list_shards(tmp_path / "data/scenes/val")))


def test_scenes_from_an_older_generator_are_rendered_again(tmp_path, monkeypatch):
    """A data/scenes written by an older generator version (objects.txt in its old format) is
    rendered again by the current one."""
    import json

    from fourm.datasets.scenes.world import GENERATOR_VERSION

    monkeypatch.chdir(tmp_path)
    size = qs.QuickstartSize(train_samples=4, val_samples=2, resolution=16)
    qs.stage_scenes(size, tmp_path / "out")
    manifest = tmp_path / "data/scenes/manifest.json"
    old = json.loads(manifest.read_text())
    assert not qs.is_outdated(old)
    old["generator_version"] = "scenes-1"
    manifest.write_text(json.dumps(old))
    assert qs.is_outdated(old)
    qs.stage_scenes(size, tmp_path / "out")
    assert json.loads(manifest.read_text())["generator_version"] == GENERATOR_VERSION


def drop_members(shard, suffix: str) -> None:
    """Rewrite a tar shard without its members ending in `suffix`."""
    import io
    import tarfile

    with tarfile.open(shard) as tar:
        kept = [(m, tar.extractfile(m).read()) for m in tar.getmembers() if not m.name.endswith(suffix)]
    with tarfile.open(shard, "w") as tar:
        for member, data in kept:
            tar.addfile(member, io.BytesIO(data))


def test_the_report_reruns_when_a_shipped_generation_or_eval_config_changes():
    from fourm.paths import resolve
    from fourm.quickstart import STAGES, report_configs

    report = next(s for s in STAGES if s.name == "report")
    paths = report.configs()
    assert paths == report_configs() and "configs/generate/caption_to_colorseg_to_rgb.yaml" in paths
    assert "configs/eval/consistency_colorseg.yaml" in paths
    assert all(resolve(p).is_file() for p in paths)


def test_the_caption_route_runs_on_its_specialist_fine_tuned_after_fourm():
    """The route's generation and eval configs name the model the caption_route stage writes; the
    report runs them on it and every other config on the any-to-any FourM."""
    from eval.config import load_eval_config
    from eval.quickstart_report import model_for
    from fourm.generation_config import load_generation_config
    from fourm.quickstart import ROUTE_CONFIG, STAGES
    from train.finetune_config import load_finetune_config

    stages = {s.name: s for s in STAGES}
    assert stages["caption_route"].needs == ("fourm",) and "caption_route" in stages["report"].needs
    route_model = f"{load_finetune_config(ROUTE_CONFIG).run_dir}/model"
    assert load_generation_config("configs/generate/caption_to_objects_to_rgb.yaml").model == route_model
    assert load_eval_config("configs/eval/consistency_objects.yaml").model == route_model
    assert load_eval_config("configs/eval/consistency_true_layout.yaml").model == route_model
    assert model_for(route_model, "other/model", (route_model,)) == route_model
    assert model_for("runs/fourm_tiny/model", "other/model", (route_model,)) == "other/model"
    assert model_for(route_model, "other/model", ()) == "other/model"


def test_the_rgb_to_semseg_transfer_is_scored_on_its_specialist_beside_fourm():
    from eval.config import load_eval_config
    from eval.quickstart_report import EVALS, model_for
    from fourm.quickstart import SEMSEG_TRANSFER_CONFIG, SMALL, STAGES, specialist_models
    from train.finetune_config import load_finetune_config

    stages = {s.name: s for s in STAGES}
    assert stages["semseg_transfer"].needs == ("fourm", "transfer_data") and "semseg_transfer" in stages["report"].needs
    assert stages["semseg_transfer"].configs() == (SEMSEG_TRANSFER_CONFIG,)  # a fixed task, no masking config
    transfer_model = f"{load_finetune_config(SEMSEG_TRANSFER_CONFIG).run_dir}/model"
    assert transfer_model in specialist_models(SMALL)
    assert "semseg" in EVALS and "semseg_finetuned" in EVALS
    assert load_eval_config("configs/eval/semseg.yaml").model == "runs/fourm_tiny/model"
    finetuned = load_eval_config("configs/eval/semseg_finetuned.yaml").model
    assert model_for(finetuned, "other/model", specialist_models(SMALL)) == transfer_model


def test_the_transfer_trains_on_its_own_scenes_tokenized_for_its_input_and_target():
    """The transfer reads the shards stage transfer_data writes, with the modalities written there,
    and is scored from the same input."""
    from eval.config import load_eval_config
    from fourm.quickstart import SEMSEG_TRANSFER_CONFIG, STAGES, TRANSFER_MODALITIES, TRANSFER_TOKEN_DIR
    from train.finetune_config import load_finetune_config

    cfg = load_finetune_config(SEMSEG_TRANSFER_CONFIG)
    assert [source.shards for source in cfg.data.train] == [f"{TRANSFER_TOKEN_DIR}/train"]
    assert set(cfg.task.inputs) | set(cfg.task.targets) <= set(TRANSFER_MODALITIES)
    assert load_eval_config("configs/eval/semseg_finetuned.yaml").inputs == cfg.task.inputs
    stages = {s.name: s for s in STAGES}
    assert set(stages["transfer_data"].needs) == {f"{name}_tokenizer" for name in TRANSFER_MODALITIES}


def test_the_small_overrides_of_the_training_stages_are_valid_keys():
    """`--small` overrides load into their configs (a typo would fail only minutes into a run)."""
    from fourm.quickstart import FOURM_CONFIG, SMALL, SPECIALISTS
    from train.finetune_config import load_finetune_config
    from train.fourm_config import load_train_config

    assert load_train_config(FOURM_CONFIG, list(SMALL.overrides["fourm"])).steps == 100
    for name, config in SPECIALISTS.items():
        assert load_finetune_config(config, list(SMALL.overrides[name])).steps == 100
