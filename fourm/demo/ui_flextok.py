"""The FlexTok tab: one image (a val sample or an upload) -> its ordered tokens -> reconstructions
from the first 1, 2, 4, ..., max tokens side by side, and the chosen count large with its ids."""
from __future__ import annotations

from typing import Optional

from fourm.demo.ui_common import enlarge, progress_callback, shows_errors

DEFAULT_TOKENS = 4
DEFAULT_STEPS = 25


def image_file(session, sample_key: Optional[str], upload: Optional[str]):
    """An uploaded file wins over the val sample; a val sample is written as a PNG first."""
    from fourm.demo.samples import write_condition_file

    if upload:
        return upload
    if not sample_key:
        raise ValueError("pick a val sample or upload an image")
    spec = session.spec_of_kind("image_seq")
    sample = session.sample(sample_key)
    if spec.name not in sample.values:
        raise ValueError(f"val sample '{sample_key}' has no '{spec.name}' image")
    return write_condition_file(spec, sample.values[spec.name], session.new_folder("flextok"), sample_key)


def input_preview(path) -> "object":
    """The chosen image as the page shows it (RGB uint8), or None if it is not an image at all."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as img:
            return enlarge(np.asarray(img.convert("RGB")))
    except OSError:
        return None


def build(session) -> None:
    """Add the tab's components and events to the current gr.Blocks."""
    import gradio as gr

    spec = session.spec_of_kind("image_seq")
    if spec is None:
        gr.Markdown("This checkpoint has no image_seq (FlexTok) modality with a trained tokenizer: "
                    + "; ".join(session.missing.values()), elem_id="flextok-missing")
        return
    keys = [s.key for s in session.samples]
    gr.Markdown(f"FlexTok turns an image into an ordered, coarse-to-fine sequence of 1..{spec.max_tokens} tokens "
                f"(`{spec.name}`). Decode any prefix: the first tokens carry the layout, later ones the detail.")
    with gr.Row():
        with gr.Column():
            sample = gr.Dropdown(keys, value=keys[0] if keys else None, label="val sample", elem_id="flextok-sample")
            upload = gr.File(label="or upload an image (square PNG/JPG; it is resized to the tokenizer's size)",
                             elem_id="flextok-upload")
        with gr.Column():
            tokens = gr.Slider(1, spec.max_tokens, value=min(DEFAULT_TOKENS, spec.max_tokens), step=1,
                               label="number of tokens", elem_id="flextok-tokens")
            guidance = gr.Slider(0.0, 5.0, value=1.0, step=0.1, label="guidance (classifier-free scale)",
                                 elem_id="flextok-guidance")
            steps = gr.Slider(1, 50, value=DEFAULT_STEPS, step=1, label="decoding steps", elem_id="flextok-steps")
            seed = gr.Number(value=0, precision=0, label="seed", elem_id="flextok-seed")
    run = gr.Button("Reconstruct", variant="primary", elem_id="flextok-run")
    status = gr.Markdown("", elem_id="flextok-status")
    strip = gr.Gallery(label="coarse to fine: reconstructions from the first k tokens", columns=6, height="auto",
                       elem_id="flextok-gallery")
    with gr.Row():
        original = gr.Image(label="input", type="numpy", interactive=False, elem_id="flextok-original")
        chosen = gr.Image(label="chosen number of tokens", type="numpy", interactive=False, elem_id="flextok-chosen")
    ids = gr.Textbox(label="token ids (first k of the ordered sequence)", lines=2, interactive=False,
                     elem_id="flextok-ids")

    @shows_errors(status)
    def reconstruct(sample_key, upload_path, num_tokens, guidance_scale, num_steps, seed_value,
                    progress=gr.Progress()):
        from fourm.demo.flextok_view import reconstruct as run_reconstruct

        path = image_file(session, sample_key, upload_path)
        rec = run_reconstruct(session, path, int(num_tokens), float(guidance_scale), int(num_steps),
                              int(seed_value or 0), progress_callback(progress))
        k = rec.chosen
        return {
            status: f"Reconstructed from 1..{len(rec.ids)} tokens; showing k = {k} large.",
            strip: [(enlarge(img), f"{n} token" + ("s" if n > 1 else "")) for n, img in rec.by_count.items()],
            original: input_preview(path),
            chosen: enlarge(rec.chosen_image, 384),
            ids: " ".join(map(str, rec.ids[:k])),
        }

    run.click(reconstruct, inputs=[sample, upload, tokens, guidance, steps, seed],
              outputs=[status, strip, original, chosen, ids])
