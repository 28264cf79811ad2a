"""The viewer end to end in real headless Chromium: upload, box prompt, overlay, probabilities, downloads."""

import json
import os
import shutil
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.prompt import Prompt
from core.runtime import Segmenter
from webapp.feedback.store import FeedbackStore
from webapp.render import BOX, LESION

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"),
]
CARD = {"name": "tiny-four", "version": "2", "training_data": "synthetic phantoms", "metrics": {"two_click_ji": 0.5}}
LOADED = "i => !!i && i.complete && i.naturalWidth > 0"


@pytest.fixture(scope="module")
def url(tmp_path_factory, make_model, four_class_spec, start_viewer):
    model = make_model(four_class_spec, card=CARD)
    examples = tmp_path_factory.mktemp("examples")
    cv2.imwrite(str(examples / "example_phantom.png"), np.full((100, 150), 90, np.uint8))
    return start_viewer(Segmenter(model, provider="cpu"), build={"examples_dir": examples})


def test_box_prompt_in_chromium(url, speckle_image, tmp_path, four_class_spec):
    from playwright.sync_api import sync_playwright

    image = tmp_path / "speckle.png"
    cv2.imwrite(str(image), speckle_image)
    (tmp_path / "notes.txt").write_text("not an image")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.goto(url)
        assert "Research tool, not for diagnosis" in page.locator("#notice").inner_text()
        page.locator("#upload input[type=file]").set_input_files(str(image))
        view = page.locator("#view img")
        view.wait_for()
        page.wait_for_function(f"() => ({LOADED})(document.querySelector('#view img'))")

        def position(x, y):
            """The page position of image pixel (x, y), laid out as Gradio shows it (scale-down, centred)."""
            box = view.bounding_box()
            nat_w, nat_h = view.evaluate("i => [i.naturalWidth, i.naturalHeight]")
            r = min(box["width"] / nat_w, box["height"] / nat_h, 1)
            s = nat_w / speckle_image.shape[1]
            return (
                box["x"] + (box["width"] - nat_w * r) / 2 + (x + 0.5) * s * r,
                box["y"] + (box["height"] - nat_h * r) / 2 + (y + 0.5) * s * r,
            )

        def click(x, y):
            """Click image pixel (x, y); seconds until the updated view has loaded."""
            old = view.get_attribute("src")
            start = time.perf_counter()
            page.mouse.click(*position(x, y))
            page.wait_for_function(
                f"old => {{ const i = document.querySelector('#view img'); return i.src !== old && ({LOADED})(i); }}",
                arg=old,
            )
            return time.perf_counter() - start

        def wait_status(text):
            script = "t => document.querySelector('#status').innerText.toLowerCase().includes(t)"
            page.wait_for_function(script, arg=text.lower())

        page.get_by_label("Box: two corners").check()
        click(120, 40)
        assert "first corner at (x=120, y=40)" in page.locator("#status").inner_text()
        click(160, 80)
        wait_status("Outlined")

        classes = page.locator("#classes").inner_text()
        assert all(name in classes for name in four_class_spec.class_names) and "%" in classes
        assert "malignant" in page.locator("#malignancy").inner_text()
        assert "Longest diameter" in page.locator("#lesion").inner_text()
        shown = page.request.get(view.get_attribute("src")).body()
        overlay = cv2.cvtColor(cv2.imdecode(np.frombuffer(shown, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        assert overlay.shape[:2] == (480, 800)
        for colour in (LESION, BOX):
            assert (np.abs(overlay.astype(int) - colour).max(axis=-1) < 40).sum() > 100, colour

        screenshot = tmp_path / "liverclick_box_prompt.png"
        page.screenshot(path=str(screenshot), full_page=True)
        if os.environ.get("LIVERCLICK_SCREENSHOT_DIR"):
            target = Path(os.environ["LIVERCLICK_SCREENSHOT_DIR"])
            target.mkdir(parents=True, exist_ok=True)
            screenshot = Path(shutil.copy(screenshot, target / screenshot.name))
        print(f"\nscreenshot after a box prompt: {screenshot}")

        with page.expect_download() as download:
            page.get_by_role("button", name="Report (JSON)").click()
        report = json.loads(Path(download.value.path()).read_text())
        assert report["prompt"] == {"clicks": [], "box": [120, 40, 160, 80]}  # the clicks land on the pixels aimed at
        assert set(report["class_probs"]) == set(four_class_spec.class_names)

        page.get_by_label("Lesion point (+)").check()
        times = [click(130 + i, 50 + 2 * i) for i in range(10)]
        median = statistics.median(times) * 1000
        print(
            f"click-to-overlay in Chromium, median of 10 clicks: {median:.0f} ms "
            f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})"
        )

        page.get_by_text("Model: tiny-four 2", exact=True).click()
        card = page.locator("#model-card")
        card.wait_for()
        assert "synthetic phantoms" in card.inner_text() and "0.5" in card.inner_text()

        # A file that is not an image: a clear message, and the tab goes on with the next one.
        page.locator("#upload button[aria-label=Clear]").click()
        page.wait_for_function("() => !document.querySelector('#view img')")
        page.locator("#upload input[type=file]").set_input_files(str(tmp_path / "notes.txt"))
        wait_status("not an image file")
        page.locator("#upload button[aria-label=Clear]").click()
        page.locator("#upload input[type=file]").set_input_files(str(image))
        view.wait_for()
        page.wait_for_function(f"() => ({LOADED})(document.querySelector('#view img'))")
        click(140, 60)
        assert "Outlined from 1 input" in page.locator("#status").inner_text()

        # An example image opens like an upload.
        page.locator("#upload button[aria-label=Clear]").click()
        page.wait_for_function("() => !document.querySelector('#view img')")
        page.get_by_text("example_phantom.png").first.click()
        page.wait_for_function(f"() => ({LOADED})(document.querySelector('#view img'))")
        assert view.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [750, 500]  # enlarged 5x
        browser.close()


@pytest.fixture(scope="module")
def reviewing(tmp_path_factory, tiny_model, start_viewer):
    """(url, store, segmenter): a viewer with logins and a feedback store, serving the benign/malignant tiny model."""
    store = FeedbackStore.open(tmp_path_factory.mktemp("db") / "feedback.db")
    segmenter = Segmenter(tiny_model, provider="cpu")
    yield start_viewer(segmenter, build={"store": store}, auth=[("ann", "pw")]), store, segmenter
    store.close()


def test_feedback_panel_in_chromium(reviewing, speckle_image, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, store, segmenter = reviewing
    image = tmp_path / "speckle.png"
    cv2.imwrite(str(image), speckle_image)
    predicted = segmenter.predict(speckle_image, Prompt().add_click(140, 60)).predicted_class
    other = next(c for c in ("benign", "malignant") if c != predicted)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.locator("input[type=text]").fill("ann")  # Gradio's login page
        page.locator("input[type=password]").fill("pw")
        page.get_by_role("button", name="Login").click()
        expect(page.locator("#reviewer")).to_contain_text("Reviewing as ann")
        submit, note = page.locator("#submit"), page.locator("#review-note")
        expect(note).to_contain_text("Outline a lesion to review it")
        expect(submit).to_be_disabled()

        page.locator("#upload input[type=file]").set_input_files(str(image))
        view = page.locator("#view img")
        page.wait_for_function(f"() => ({LOADED})(document.querySelector('#view img'))")

        def click(x, y):
            """Click image pixel (x, y) (shown enlarged, scaled down to fit, centred) and wait for the new view."""
            old = view.get_attribute("src")
            view.scroll_into_view_if_needed()  # the feedback panel below may have scrolled it away
            box = view.bounding_box()
            nat_w, nat_h = view.evaluate("i => [i.naturalWidth, i.naturalHeight]")
            r, s = min(box["width"] / nat_w, box["height"] / nat_h, 1), nat_w / speckle_image.shape[1]
            page.mouse.click(
                box["x"] + (box["width"] - nat_w * r) / 2 + (x + 0.5) * s * r,
                box["y"] + (box["height"] - nat_h * r) / 2 + (y + 0.5) * s * r,
            )
            script = f"o => {{ const i = document.querySelector('#view img'); return i.src !== o && ({LOADED})(i); }}"
            page.wait_for_function(script, arg=old)

        click(140, 60)
        expect(note).to_contain_text("Not saved yet")
        expect(submit).to_be_enabled()

        expect(page.locator("#corrected")).to_be_hidden()
        page.locator("#verdict").get_by_label("Disagree").check()
        page.locator("#rating").get_by_label("4", exact=True).check()
        submit.click()  # no corrected class yet: told so, nothing stored
        expect(note).to_contain_text("Not saved: a reviewer who disagrees must give the corrected class")
        assert store.count() == 0

        page.locator("#corrected input").click()
        page.get_by_role("option", name=other).click()
        page.locator("#accepted").get_by_role("checkbox").check()
        page.locator("#comment textarea").fill("margin slightly generous")
        submit.click()
        expect(note).to_contain_text("Saved as #1")
        expect(submit).to_be_disabled()  # no second record for this outline
        expect(page.locator("#verdict").get_by_label("Disagree")).not_to_be_checked()  # the form starts afresh
        (record,) = store.iter_records()
        assert (record.reviewer, record.agree, record.corrected_class) == ("ann", False, other)
        assert (record.outline_rating, record.accepted, record.comment) == (4, True, "margin slightly generous")
        assert record.prompt.to_dict() == {"clicks": [{"x": 140, "y": 60, "positive": True}]}

        click(150, 70)  # a corrective click: a new outline to review
        expect(note).to_contain_text("Not saved yet")
        expect(submit).to_be_enabled()
        browser.close()
