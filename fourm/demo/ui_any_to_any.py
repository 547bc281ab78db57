"""The any-to-any tab: per modality a condition source (off / val sample / upload, or typed text)
and generation settings; targets chosen in generation order; every output shown (colourised, with
legends), downloadable, and the settings saved as a `fourm generate` YAML."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fourm.demo.ui_common import enlarge, progress_callback, shows_errors

OFF, SAMPLE, UPLOAD, TYPED = "off", "val sample", "upload", "typed"


@dataclass
class ModalityControls:
    """The components of one modality: where its condition comes from, and its target settings."""

    name: str
    source: Any
    upload: Any  # gr.File, or gr.Textbox for text
    scheme: Any
    steps: Any
    temperature: Any
    guidance: Any
    num_tokens: Any = None  # image_seq only


def schemes(session, spec) -> list[str]:
    """Text, and image_seq in a model that decodes it causally, only decode left to right."""
    causal = session.model.embeddings[spec.name].causal
    return ["autoregressive"] if causal else ["maskgit", "roar", "autoregressive"]


def default_roles(session) -> tuple[list[str], list[str]]:
    """(conditions, targets) preselected: the first image modality from the val sample, with every
    other modality that reads the same raw file (rgb and rgb_grid both read <key>.rgb.png: two
    views of one image), and the rest as targets."""
    usable = list(session.tokenizers)
    images = [n for n in usable if session.specs[n].kind != "text"]
    if session.samples and images:
        first_file = session.specs[images[0]].raw_ext
        conditions = [n for n in images if session.specs[n].raw_ext == first_file]
    else:
        conditions = [n for n in usable if session.specs[n].kind == "text"][:1]
    return conditions, [n for n in usable if n not in conditions and session.specs[n].kind != "image_patches"]


def modality_controls(session, spec, is_condition: bool) -> ModalityControls:
    import gradio as gr

    text = spec.kind == "text"
    choices = [OFF, SAMPLE, TYPED if text else UPLOAD] if session.samples else [OFF, TYPED if text else UPLOAD]
    default = (SAMPLE if session.samples else TYPED) if is_condition else OFF
    with gr.Accordion(f"{spec.name} ({spec.kind}, {spec.data})", open=is_condition or spec.kind == "image_seq"):
        with gr.Row():
            source = gr.Radio(choices, value=default, label=f"{spec.name} as a condition", elem_id=f"a2a-source-{spec.name}")
            if text:
                upload = gr.Textbox(label=f"type a {spec.name}", lines=2, elem_id=f"a2a-typed-{spec.name}")
            else:
                upload = gr.File(label=f"upload a {spec.name} file (.png/.jpg/.npy)", elem_id=f"a2a-upload-{spec.name}")
        with gr.Row():
            options = schemes(session, spec)
            scheme = gr.Dropdown(options, value=options[0], label="scheme (as a target)", elem_id=f"a2a-scheme-{spec.name}")
            steps = gr.Slider(1, max(spec.max_tokens, 2), value=min(8, spec.max_tokens), step=1, label="steps")
            temperature = gr.Slider(0.0, 2.0, value=1.0, step=0.05, label="temperature")
            guidance = gr.Slider(0.0, 5.0, value=1.0, step=0.1, label="guidance (cfg scale)")
            num_tokens = None
            if spec.kind == "image_seq":
                num_tokens = gr.Slider(1, spec.max_tokens, value=spec.max_tokens, step=1, label="number of tokens",
                                       elem_id=f"a2a-tokens-{spec.name}")
    return ModalityControls(spec.name, source, upload, scheme, steps, temperature, guidance, num_tokens)


def target_settings(session, c: ModalityControls, data: dict) -> dict:
    spec = session.specs[c.name]
    out = {"modality": c.name, "scheme": data[c.scheme]}
    if spec.kind != "text" and data[c.scheme] != "autoregressive":
        out["steps"] = int(data[c.steps])
    out.update(temperature=float(data[c.temperature]), cfg_scale=float(data[c.guidance]))
    if c.num_tokens is not None:
        out["num_tokens"] = int(data[c.num_tokens])
    return out


def condition_file(session, c: ModalityControls, data: dict, sample_key, folder: Path):
    """The file one condition comes from, or None when its source is off."""
    from fourm.demo.samples import write_condition_file

    source, spec = data[c.source], session.specs[c.name]
    if source == OFF:
        return None
    if source == SAMPLE:
        sample = session.sample(sample_key)
        if c.name not in sample.values:
            raise ValueError(f"val sample '{sample_key}' has no '{c.name}'")
        return write_condition_file(spec, sample.values[c.name], folder, sample.key)
    if source == TYPED:
        text = (data[c.upload] or "").strip()
        if not text:
            raise ValueError(f"condition '{c.name}': type some text, or set its source to off")
        return write_condition_file(spec, text, folder, "typed")
    if not data[c.upload]:
        raise ValueError(f"condition '{c.name}': choose a file to upload, or set its source to off")
    return Path(data[c.upload])


def collect(session, controls: list[ModalityControls], data: dict, sample_key, targets: list[str], seed) -> tuple[dict, dict]:
    """(settings dict for settings_yaml, {condition name: file})."""
    from fourm.demo.settings_yaml import settings_dict

    folder = session.new_folder("conditions")
    files = {c.name: condition_file(session, c, data, sample_key, folder) for c in controls}
    files = {n: f for n, f in files.items() if f is not None}
    by_name = {c.name: c for c in controls}
    chosen = [target_settings(session, by_name[n], data) for n in (targets or [])]
    return settings_dict(session.checkpoint, list(files), chosen, int(seed or 0)), files


def sample_previews(session, key) -> list:
    """(image, caption) of every modality of a val sample, colourised as outputs are."""
    from fourm.demo.samples import raw_to_value
    from fourm.generation.outputs import preview_image

    if not key:
        return []
    sample = session.sample(key)
    return [(enlarge(preview_image(session.specs[n], raw_to_value(session.specs[n], v))), n)
            for n, v in sample.values.items()]


def build(session) -> None:
    """Add the tab's components and events to the current gr.Blocks."""
    import gradio as gr

    usable = [session.specs[n] for n in session.tokenizers]
    if not usable:
        gr.Markdown("No modality of this checkpoint has a trained tokenizer: " + "; ".join(session.missing.values()),
                    elem_id="a2a-missing")
        return
    conds, targets_default = default_roles(session)
    keys = [s.key for s in session.samples]
    gr.Markdown("Choose conditions and targets. Targets are generated in the order listed; each joins the "
                "conditions of the later ones. Settings under each modality apply when it is a target.")
    with gr.Row():
        sample = gr.Dropdown(keys, value=keys[0] if keys else None, label="val sample (for 'val sample' conditions)",
                             elem_id="a2a-sample")
        generable = [s.name for s in usable if s.kind != "image_patches"]  # pixel patches are inputs only
        targets = gr.Dropdown(generable, value=[n for n in targets_default if n in generable], multiselect=True,
                              label="targets, in generation order", elem_id="a2a-targets")
    preview = gr.Gallery(value=sample_previews(session, keys[0] if keys else None), label="the val sample",
                         columns=6, height="auto", elem_id="a2a-sample-preview")
    sample.change(lambda key: sample_previews(session, key), inputs=[sample], outputs=[preview])
    controls = [modality_controls(session, spec, spec.name in conds) for spec in usable]
    with gr.Row():
        seed = gr.Number(value=0, precision=0, label="seed", elem_id="a2a-seed")
        flextok_steps = gr.Slider(1, 50, value=25, step=1, label="FlexTok decoding steps (RGB outputs)")
        flextok_guidance = gr.Slider(0.0, 5.0, value=1.0, step=0.1, label="FlexTok decoding guidance")
    with gr.Row():
        run = gr.Button("Generate", variant="primary", elem_id="a2a-run")
        save = gr.Button("Save settings as YAML", elem_id="a2a-save-yaml")
    status = gr.Markdown("", elem_id="a2a-status")
    gallery = gr.Gallery(label="outputs", columns=4, height="auto", elem_id="a2a-gallery")
    legends = gr.Image(label="legends (depth colour bar, segmentation classes)", type="numpy", interactive=False,
                       elem_id="a2a-legends")
    texts = gr.Textbox(label="text outputs", lines=3, interactive=False, elem_id="a2a-text")
    files = gr.File(label="download the outputs", file_count="multiple", interactive=False, elem_id="a2a-files")
    yaml_text = gr.Code(label="generation config (fourm generate --config FILE --input TOKEN_SHARDS)", language="yaml",
                        elem_id="a2a-yaml")
    yaml_file = gr.File(label="download the YAML", interactive=False, elem_id="a2a-yaml-file")

    fields = [c for ctl in controls for c in (ctl.source, ctl.upload, ctl.scheme, ctl.steps, ctl.temperature,
                                              ctl.guidance, ctl.num_tokens) if c is not None]
    inputs = {sample, targets, seed, flextok_steps, flextok_guidance, *fields}

    @shows_errors(status)
    def generate(data, progress=gr.Progress()):
        from fourm.demo.any_to_any import run as run_generation
        from fourm.demo.legends import side_by_side
        from fourm.demo.settings_yaml import to_config

        settings, cond_files = collect(session, controls, data, data[sample], data[targets], data[seed])
        cfg = to_config(settings, session.specs)
        outputs = run_generation(session, cond_files, cfg, int(data[flextok_steps]), float(data[flextok_guidance]),
                                 progress_callback(progress))
        return {
            status: f"Generated {', '.join(o.name for o in outputs)} from {', '.join(cond_files) or 'nothing'}.",
            gallery: [(enlarge(o.preview), o.name) for o in outputs],
            legends: side_by_side([o.legend for o in outputs if o.legend is not None]),
            texts: "\n".join(f"{o.name}: {o.text}" for o in outputs if o.text is not None),
            files: [str(p) for o in outputs for p in o.files],
        }

    @shows_errors(status)
    def save_yaml(data):
        from fourm.demo.settings_yaml import write_yaml

        settings, _ = collect(session, controls, data, data[sample], data[targets], data[seed])
        path = session.new_folder("yaml") / "generate.yaml"
        write_yaml(settings, path, session.specs)  # loaded back with load_generation_config
        return {status: f"Saved {path.name}: it loads with `load_generation_config`.",
                yaml_text: path.read_text(), yaml_file: str(path)}

    run.click(generate, inputs=inputs, outputs=[status, gallery, legends, texts, files])
    save.click(save_yaml, inputs=inputs, outputs=[status, yaml_text, yaml_file])
