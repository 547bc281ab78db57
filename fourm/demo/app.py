"""`fourm demo`: the web app over one FourM checkpoint, two tabs (FlexTok, any-to-any).

    demo = build_app(DemoSession.load("runs/fourm_tiny/model", samples="data/scenes/val"))
    demo.launch(server_name="127.0.0.1", server_port=7860)

gradio is an optional extra (`pip install -e .[demo]`), imported only here and in the tabs.
"""
from __future__ import annotations

import os
from typing import Optional

DEFAULT_HOST = "127.0.0.1"  # loopback: the demo is for the person at this machine
DEFAULT_PORT = 7860


def require_gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home: the demo works offline
    try:
        import gradio
    except ImportError as err:
        raise ValueError("the demo needs gradio: pip install -e '.[demo]'") from err
    return gradio


def header(session) -> str:
    specs = ", ".join(f"`{s.name}` ({s.kind})" for s in session.specs.values())
    lines = [f"# fourm demo\nCheckpoint `{session.checkpoint}`: {specs}. "
             f"{len(session.samples)} val samples."]
    if session.missing:
        lines.append("Modalities without a tokenizer are left out: " + "; ".join(session.missing.values()))
    return "\n\n".join(lines)


def build_app(session):
    """gr.Blocks with both tabs over `session` (a DemoSession)."""
    gr = require_gradio()
    from fourm.demo import ui_any_to_any, ui_flextok

    with gr.Blocks(title="fourm demo", analytics_enabled=False) as demo:  # no calls home: offline machine
        gr.Markdown(header(session))
        with gr.Tab("FlexTok", elem_id="tab-flextok"):
            ui_flextok.build(session)
        with gr.Tab("Any-to-any", elem_id="tab-any-to-any"):
            ui_any_to_any.build(session)
    return demo


def launch(checkpoint: str | os.PathLike, samples: Optional[str | os.PathLike] = None, host: str = DEFAULT_HOST,
           port: Optional[int] = DEFAULT_PORT, device: str = "cpu", block: bool = True):
    """Load the checkpoint, build the app and serve it; block=False returns the running app
    (tests stop it with `demo.close()`)."""
    require_gradio()  # before the model loads: a missing extra is the first thing to say
    from fourm.demo.session import DemoSession

    session = DemoSession.load(checkpoint, samples=samples, device=device)
    demo = build_app(session)
    demo.queue(default_concurrency_limit=1)  # one CPU-bound request at a time; others wait in the queue
    demo.launch(server_name=host, server_port=port, prevent_thread_lock=not block, show_error=False,
                allowed_paths=[str(session.work_dir)], share=False, inbrowser=False)
    return demo
