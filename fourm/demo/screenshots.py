"""Drive a running demo in headless Chromium (Debian's /usr/bin/chromium through Playwright; no
browser is ever downloaded): click through both tabs, wait for the images, save screenshots.

    with chromium_page(tmp_dir) as page:
        page.goto(url)
        flextok_tab(page, out / "demo_flextok.png")
        any_to_any_tab(page, out / "demo_any_to_any.png")

Used by tests/test_demo_browser.py and bench/demo_screenshots.py.
"""
from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Iterator

CHROMIUM = "/usr/bin/chromium"
# Offline and sandbox-free: no background calls home (the machine has no network), root in CI.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 120_000  # CPU decoding on a busy machine can take a while


def free_port() -> int:
    """A free loopback TCP port (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def chromium_page(profile_dir: str | os.PathLike, width: int = 1280, height: int = 1600) -> Iterator:
    """A Playwright page in Debian's Chromium with a fresh profile folder `profile_dir`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile_dir), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": width, "height": height})
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            context.close()


def images_in(page, elem_id: str, at_least: int = 1) -> int:
    """Wait until the element `elem_id` holds at least `at_least` loaded <img>; return how many."""
    page.wait_for_function(
        "([id, n]) => { const imgs = document.querySelectorAll(`#${id} img`);"
        " return imgs.length >= n && [...imgs].every(i => i.complete && i.naturalWidth > 0); }",
        arg=[elem_id, at_least], timeout=TIMEOUT_MS)
    return page.locator(f"#{elem_id} img").count()


def status_text(page, elem_id: str, contains: str) -> str:
    """Wait until the status line `elem_id` contains `contains`; return its text."""
    page.wait_for_function("([id, s]) => (document.getElementById(id)?.innerText || '').includes(s)",
                           arg=[elem_id, contains], timeout=TIMEOUT_MS)
    return page.locator(f"#{elem_id}").inner_text()


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def flextok_tab(page, screenshot: str | os.PathLike) -> dict:
    """Reconstruct the default val sample; returns counts of images shown (none, with the tab's
    message, for a checkpoint without a FlexTok modality)."""
    open_tab(page, "FlexTok")
    page.wait_for_selector("#flextok-run, #flextok-missing")
    if page.locator("#flextok-run").count() == 0:
        page.screenshot(path=str(screenshot), full_page=True)
        return {"strip": 0, "chosen": 0, "ids": ""}
    page.locator("#flextok-run").click()
    status_text(page, "flextok-status", "Reconstructed")
    shown = {"strip": images_in(page, "flextok-gallery", 2), "chosen": images_in(page, "flextok-chosen")}
    shown["ids"] = page.locator("#flextok-ids textarea").input_value()
    page.screenshot(path=str(screenshot), full_page=True)
    return shown


def any_to_any_tab(page, screenshot: str | os.PathLike) -> dict:
    """Generate with the default conditions and targets, then save the settings as YAML."""
    open_tab(page, "Any-to-any")
    page.locator("#a2a-run").click()
    status_text(page, "a2a-status", "Generated")
    shown = {"outputs": images_in(page, "a2a-gallery", 1), "legends": page.locator("#a2a-legends img").count()}  # one image, all legends side by side
    page.locator("#a2a-save-yaml").click()
    status_text(page, "a2a-status", "Saved")
    shown["yaml_url"] = page.locator("#a2a-yaml-file a[href]").first.get_attribute("href")
    page.screenshot(path=str(screenshot), full_page=True)
    return shown


def save_screenshots(url: str, out_dir: str | os.PathLike, profile_dir: str | os.PathLike) -> list[Path]:
    """Both tabs of the demo at `url` -> out_dir/demo_flextok.png, out_dir/demo_any_to_any.png."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "demo_flextok.png", out / "demo_any_to_any.png"]
    with chromium_page(profile_dir) as page:
        page.goto(url)
        flextok_tab(page, paths[0])
        any_to_any_tab(page, paths[1])
    return paths
