"""The web demo end to end in a real browser: a micro checkpoint built here (random weights, 16 px
scenes), `fourm.demo.app.launch` on a free loopback port, Debian's headless Chromium driven by
Playwright through both tabs; images must appear, a bad upload must show a message in the page
and the app must keep serving. Screenshots go to tmp_path (and to $FOURM_SCREENSHOT_DIR if set).

Run: pytest -m browser tests/test_demo_browser.py   (needs /usr/bin/chromium and the [demo,test] extras)
"""
import os
import shutil
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"


def _requirements() -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    pytest.importorskip("gradio", reason="gradio not installed (pip install -e '.[demo]')")
    pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install -e '.[demo]')")


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory):
    _requirements()
    import torch

    from fourm.demo.app import launch
    from fourm.demo.micro import build_micro_checkpoint
    from fourm.demo.screenshots import free_port

    torch.set_num_threads(1)
    model_dir, samples_dir = build_micro_checkpoint(tmp_path_factory.mktemp("micro"))
    port = free_port()
    demo = launch(model_dir, samples=samples_dir, host="127.0.0.1", port=port, block=False)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture()
def page(tmp_path):
    from fourm.demo.screenshots import chromium_page

    with chromium_page(tmp_path / "chromium_profile") as page:
        yield page


def keep_screenshot(path: Path) -> None:
    folder = os.environ.get("FOURM_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)


def test_both_tabs_show_images_and_the_yaml_loads_back(demo_url, page, tmp_path):
    from fourm.demo.screenshots import any_to_any_tab, flextok_tab
    from fourm.generation_config import load_generation_config

    page.goto(demo_url)
    shots = [tmp_path / "demo_flextok.png", tmp_path / "demo_any_to_any.png"]
    flex = flextok_tab(page, shots[0])
    assert flex["strip"] == 4  # 1, 2, 4 and 8 tokens (the chosen 4 is one of them)
    assert flex["chosen"] == 1 and len(flex["ids"].split()) == 4  # ids of the chosen 4 tokens

    a2a = any_to_any_tab(page, shots[1])
    assert a2a["outputs"] == 3  # default: rgb from the val sample -> caption, depth, semseg
    assert a2a["legends"] == 1  # the depth colour bar and the segmentation classes in one image
    downloads = page.locator("#a2a-files a[href]")
    names = {Path(urlparse(downloads.nth(i).get_attribute("href")).path).name for i in range(downloads.count())}
    assert {"demo.caption.txt", "demo.depth.png", "demo.depth.npy", "demo.semseg.png"} <= names

    response = page.request.get(urljoin(demo_url, a2a["yaml_url"]))  # the YAML download link
    assert response.ok
    yaml_path = tmp_path / "saved.yaml"
    yaml_path.write_bytes(response.body())
    cfg = load_generation_config(yaml_path)  # what `fourm generate` does first, against the registry
    assert [t.modality for t in cfg.targets] == ["caption", "depth", "semseg"]
    assert [c.modality for c in cfg.conditions] == ["rgb"]
    for shot in shots:
        assert shot.stat().st_size > 10_000
        keep_screenshot(shot)


def test_a_bad_upload_shows_a_message_and_the_app_keeps_serving(demo_url, page, tmp_path):
    from fourm.demo.screenshots import images_in, open_tab, status_text

    bad = tmp_path / "not_an_image.png"
    bad.write_text("this is text, not a PNG")
    page.goto(demo_url)
    open_tab(page, "FlexTok")
    page.locator("#flextok-upload input[type=file]").set_input_files(str(bad))
    page.locator("#flextok-run").click()
    message = status_text(page, "flextok-status", "Error")
    assert "not_an_image.png" in message and "Traceback" not in page.content()

    wide = tmp_path / "wide.png"
    from PIL import Image

    Image.new("RGB", (32, 16), "red").save(wide)
    page.goto(demo_url)  # a fresh page: the upload box holds the first file
    open_tab(page, "FlexTok")
    page.locator("#flextok-upload input[type=file]").set_input_files(str(wide))
    page.locator("#flextok-run").click()
    page.wait_for_function("() => document.getElementById('flextok-status').innerText.includes('square')")

    open_tab(page, "Any-to-any")  # the app still serves requests after both errors
    page.locator("#a2a-run").click()
    status_text(page, "a2a-status", "Generated")
    assert images_in(page, "a2a-gallery", 3) == 3


def test_impossible_settings_show_a_message(demo_url, page):
    from fourm.demo.screenshots import open_tab, status_text

    page.set_default_timeout(30_000)
    page.goto(demo_url)
    open_tab(page, "Any-to-any")
    page.locator("#a2a-source-rgb label").filter(has_text="upload").click()  # upload chosen, no file given
    page.locator("#a2a-run").click()
    assert "choose a file to upload" in status_text(page, "a2a-status", "Error")

    page.locator("#a2a-source-rgb label").filter(has_text="val sample").click()
    page.locator("#a2a-targets input").click()
    page.get_by_role("option", name="rgb").click()  # rgb is now a condition and a target
    page.locator("#a2a-save-yaml").click()
    assert "is already a condition" in status_text(page, "a2a-status", "already a condition")
