"""Helpers shared by the demo's tabs: errors shown in the page, images enlarged for display,
gr.Progress as a plain callback."""
from __future__ import annotations

import functools
import html
import logging
from typing import Any, Callable

import numpy as np

log = logging.getLogger(__name__)
DISPLAY_SIDE = 256  # small model outputs (16-64 px) are enlarged to about this for the page


def enlarge(image: np.ndarray, side: int = DISPLAY_SIDE) -> np.ndarray:
    """uint8 (H, W, 3) -> (H*f, W*f, 3), f the integer factor that brings the longer side near
    `side` (nearest neighbour, so token-level detail stays visible)."""
    factor = max(1, side // max(image.shape[:2]))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1) if factor > 1 else image


def progress_callback(progress: Any) -> Callable[[float, str], None]:
    """gr.Progress -> fn(fraction, message)."""
    return lambda fraction, message: progress(fraction, desc=message)


def error_message(err: BaseException) -> str:
    """One line for the page. Bad input (ValueError, FileNotFoundError, KeyError, ConfigError) says
    what to fix; anything else is a bug: logged with its traceback, named in one line here."""
    if isinstance(err, (ValueError, FileNotFoundError, KeyError)):
        return str(err).strip("'\"")
    log.error("demo: unexpected error", exc_info=err)
    return f"internal error ({type(err).__name__}: {err}); see the server log"


def shows_errors(status_component: Any) -> Callable:
    """Decorate a handler that returns {component: value}: an error becomes a warning toast and an
    'Error: ...' line in `status_component`, the other outputs stay as they were, and the app
    keeps serving (no traceback reaches the page)."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def handler(*args, **kwargs):
            import gradio as gr

            try:
                return fn(*args, **kwargs)
            except Exception as err:  # noqa: BLE001 - every failure becomes a message in the page
                message = error_message(err)
                gr.Warning(message)
                return {status_component: f"**Error:** {html.escape(message)}"}  # '<...>' is not markup

        return handler

    return wrap
