"""The viewer end to end in real headless Chromium: the canvas's gestures, its outline history, zoom and pan, fast
clicks, cine frames, bad uploads, downloads, the model panel, examples, the feedback panel and the login."""

import base64
import dataclasses
import json
import os
import shutil
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from core.prompt import Prompt
from core.runtime import Segmenter
from webapp.feedback.store import FeedbackStore
from webapp.overlay import outline_polygons

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CARD = {"name": "tiny-four", "version": "2", "training_data": "synthetic phantoms", "metrics": {"two_click_ji": 0.5}}
POINTS = (("sensitivity_90", 0.19),)
PIXELS = "() => document.querySelector('#canvas canvas').toDataURL('image/png')"  # what the canvas has drawn


@pytest.fixture(scope="module")
def served(tmp_path_factory, make_model, four_class_spec, start_viewer):
    """(url, segmenter): the viewer on a four-class tiny model with an operating point, and one example."""
    spec = dataclasses.replace(four_class_spec, operating_points=POINTS)
    segmenter = Segmenter(make_model(spec, card=CARD), provider="cpu")
    examples = tmp_path_factory.mktemp("examples")
    cv2.imwrite(str(examples / "example_phantom.png"), np.full((100, 150), 90, np.uint8))
    return start_viewer(segmenter, build={"examples_dir": examples}), segmenter


def opened(view, url, image) -> dict:
    """Open the page at ``url`` and upload ``image``; the canvas's state once it shows it."""
    view.page.goto(url)
    view.page.locator("#upload input[type=file]").set_input_files(str(image))
    return view.wait_picture()


def tool(page, name: str):
    """A button of the canvas's toolbar."""
    return page.locator("#canvas").get_by_role("button", name=name, exact=True)


def drawn(page) -> np.ndarray:
    """The canvas's pixels as (h, w, 4) uint8 RGBA (sent as a PNG: a pixel array would take seconds)."""
    png = base64.b64decode(page.evaluate(PIXELS).split(",", 1)[1])
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)


def test_gestures_outline_history_and_result(served, page, canvas, scan, tmp_path):
    url, segmenter = served
    view = canvas(page)
    opened(view, url, scan)
    assert "Research tool, not for diagnosis" in page.locator("#notice").inner_text()

    view.drag((120, 40), (160, 80))  # press, drag, release: a box
    st = view.settle(1)
    assert st["shown"]["inputs"] == [{"box": [120, 40, 160, 80]}] and st["shown"]["outline"]
    result = page.locator("#canvas .lc-result").inner_text()
    assert all(name in result for name in ("cyst", "hemangioma", "metastasis", "hcc", "Longest diameter"))
    sentence = page.locator("#canvas .lc-sentence").inner_text()
    assert sentence.startswith("Malignancy score (not a calibrated probability): ") and "90%-sensitivity" in sentence
    page.locator("#canvas .lc-details summary").click()  # the details, on demand
    assert "90%-sensitivity threshold (0.19)" in page.locator("#canvas .lc-details").inner_text()
    screenshot = tmp_path / "liverclick_box_prompt.png"
    page.screenshot(path=str(screenshot), full_page=True)
    if os.environ.get("LIVERCLICK_SCREENSHOT_DIR"):
        target = Path(os.environ["LIVERCLICK_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, target / screenshot.name)
    with page.expect_download() as download:
        page.get_by_role("button", name="Report (JSON)").click()
    report = json.loads(Path(download.value.path()).read_text())
    assert report["prompt"] == {"clicks": [], "box": [120, 40, 160, 80]} and set(report["class_probs"]) == set(
        segmenter.spec.class_names
    )
    with page.expect_download() as download:
        page.get_by_role("button", name="Mask (PNG)").click()
    assert cv2.imread(download.value.path(), cv2.IMREAD_GRAYSCALE).shape == (120, 200)

    outlines = [view.state()["shown"]["outline"]]
    view.click(140, 60)  # a lesion point
    outlines.append(view.state()["shown"]["outline"])
    view.click(100, 60, shift=True)  # shift-click: background
    outlines.append(view.state()["shown"]["outline"])
    view.click(105, 62, button="right")  # right-click: background
    tool(page, "Background point (−)").click()  # the mode buttons
    view.click(110, 64)
    tool(page, "Lesion point (+)").click()
    inputs = view.state()["shown"]["inputs"]
    assert [(i["x"], i["y"], i["positive"]) for i in inputs[1:]] == [
        (140, 60, True),
        (100, 60, False),
        (105, 62, False),
        (110, 64, False),
    ]
    assert "Outlined from 5 inputs" in view.status()

    # Undo shows the outline before exactly: z, Ctrl-Z and the button.
    view.key("z")
    view.key("Control+z")
    assert view.state()["shown"]["outline"] == outlines[2] and len(view.state()["shown"]["inputs"]) == 3
    drawn_before = view.state()["drawn"]
    tool(page, "Undo").click()
    st = view.settle(drawn_before + 1)
    assert st["shown"]["outline"] == outlines[1] and len(st["shown"]["inputs"]) == 2

    # A new box starts afresh; undo brings back the clicks before it.
    view.drag((110, 30), (170, 90))
    st = view.settle(st["drawn"] + 1)
    assert st["shown"]["inputs"] == [{"box": [110, 30, 170, 90]}]
    st = view.key("z")
    assert len(st["shown"]["inputs"]) == 2 and st["shown"]["outline"] == outlines[1]

    # Box mode: two clicks at opposite corners.
    tool(page, "Box").click()
    page.mouse.click(*view.at(125, 45))
    page.mouse.click(*view.at(155, 75))
    st = view.settle(st["drawn"] + 1)
    assert st["shown"]["inputs"] == [{"box": [125, 45, 155, 75]}]
    tool(page, "Lesion point (+)").click()

    # Markers keep their sign: + has a white vertical bar, - has none.
    st = view.click(60, 30)
    st = view.click(60, 90, shift=True)
    page.mouse.move(5, 5)  # off the canvas: no crosshair
    pixels = drawn(page)
    box = page.locator("#canvas canvas").bounding_box()
    for (x, y), plus in (((60, 30), True), ((60, 90), False)):
        sx = round(box["x"] + st["ox"] + (x + 0.5) * st["scale"] - box["x"])
        sy = round(box["y"] + st["oy"] + (y + 0.5) * st["scale"] - box["y"])
        above = pixels[sy - 3, sx - 1 : sx + 2, :3].astype(int).min(axis=1).max()  # the whitest of three pixels
        assert (above > 200) == plus, (x, y, above)
    # A hover crosshair: a line through the cursor across the view.
    row = round(st["oy"] + 100 * st["scale"])
    page.mouse.move(box["x"] + st["ox"] + 20 * st["scale"], box["y"] + row)
    lit = drawn(page)[row - 2 : row + 3, :, :3].astype(int).mean(axis=(1, 2))
    page.mouse.move(5, 5)
    dark = drawn(page)[row - 2 : row + 3, :, :3].astype(int).mean(axis=(1, 2))
    assert (lit - dark).max() > 20, lit - dark

    st = view.key("Escape")  # clear
    assert st["shown"]["inputs"] == [] and st["shown"]["outline"] == [] and not st["shown"]["can_undo"]
    assert page.locator("#canvas .lc-result").inner_text() == ""


def bright_centre(page, threshold: int = 90) -> tuple[float, float]:
    """The page position of the test image's bright square, as the canvas drew it (weighted centroid)."""
    pixels = drawn(page)[..., 0].astype(float)
    weights = np.clip(pixels - threshold, 0, None)
    ys, xs = np.mgrid[: weights.shape[0], : weights.shape[1]]
    box = page.locator("#canvas canvas").bounding_box()
    total = weights.sum()
    assert total > 0, "the square is not in view"
    return box["x"] + (xs * weights).sum() / total + 0.5, box["y"] + (ys * weights).sum() / total + 0.5


def test_zoom_and_pan_keep_clicks_on_the_pixel_drawn_under_the_cursor(served, page, canvas, tmp_path):
    """From x0.25 to x4: the click lands within a pixel of the image pixel the canvas drew under the cursor, zoom
    keeps the point under the cursor, pan moves the picture with the mouse."""
    image = np.full((400, 600), 20, np.uint8)
    cx, cy = 371, 233
    image[cy - 4 : cy + 5, cx - 4 : cx + 5] = 255  # a 9 x 9 square centred on pixel (371, 233)
    path = tmp_path / "square.png"
    cv2.imwrite(str(path), image)
    url, _ = served
    view = canvas(page)
    opened(view, url, path)
    page.locator(view.ROOT).focus()
    for target in (0.25, 0.5, 1.0, 2.0, 4.0):
        page.mouse.move(5, 5)
        sx, sy = bright_centre(page)
        page.mouse.move(sx, sy)
        page.mouse.wheel(0, -np.log(target / view.state()["scale"]) / 0.0015)  # zoom about the square
        page.mouse.move(5, 5)
        scale = f"document.querySelector('{view.ROOT}').__liverclick.scale"
        page.wait_for_function(f"() => Math.abs({scale} / {target} - 1) < 1e-3")
        after = bright_centre(page)
        assert abs(after[0] - sx) < 1.5 and abs(after[1] - sy) < 1.5, "zoom moved the point under the cursor"
        # Pan: a middle-button drag, then a drag with the space bar held.
        for button, keys in (("middle", None), ("left", "Space")):
            page.mouse.move(after[0], after[1])
            if keys:
                page.keyboard.down(keys)
            page.mouse.down(button=button)
            page.mouse.move(after[0] + 23, after[1] - 14, steps=4)
            page.mouse.up(button=button)
            if keys:
                page.keyboard.up(keys)
            page.mouse.move(5, 5)
            moved = bright_centre(page)
            assert abs(moved[0] - after[0] - 23) < 1.5 and abs(moved[1] - after[1] + 14) < 1.5, (target, button)
            after = moved
        assert view.state()["shown"]["inputs"] == []  # panning adds no input
        for dx, dy in ((0, 0), (3, -2), (-5, 4)):
            px, py = int(after[0]) + dx, int(after[1]) + dy  # a page position (Chromium's are whole pixels)
            drawn_before = view.state()["drawn"]
            page.mouse.click(px, py)
            st = view.settle(drawn_before + 1)
            got = st["shown"]["inputs"][-1]
            s = st["scale"]
            want = (cx + 0.5 + (px - after[0]) / s, cy + 0.5 + (py - after[1]) / s)
            assert abs(got["x"] - (want[0] - 0.5)) <= 1 and abs(got["y"] - (want[1] - 0.5)) <= 1, (target, got, want)
        view.key("Escape")


def test_fast_clicks_are_queued_applied_in_order_and_all_outlined(served, page, canvas, scan, speckle_image):
    url, segmenter = served
    view = canvas(page)
    opened(view, url, scan)
    points = [(140, 60), (146, 64), (134, 57), (150, 55), (128, 66)]
    positions = [view.at(x, y) for x, y in points]
    # Five clicks within a millisecond or so (dispatched in the page: Playwright's own clicks take a round trip
    # each), then the markers shown at once, before any answer.
    markers = page.evaluate(
        """([root, positions]) => {
        const canvas = document.querySelector(root + ' canvas');
        for (const [x, y] of positions) {
            const at = { clientX: x, clientY: y, button: 0, bubbles: true };
            canvas.dispatchEvent(new MouseEvent('mousedown', at));
            window.dispatchEvent(new MouseEvent('mouseup', at));
        }
        return document.querySelector(root).__liverclick.inputsShown().length;
        }""",
        [view.ROOT, positions],
    )
    st = view.settle(5)
    starts = [t["t0"] for t in st["timings"]]
    assert max(starts) - min(starts) < 100, "the five clicks took 100 ms or more"
    assert markers == 5  # every click shows its marker at once, before its answer
    assert [(i["x"], i["y"]) for i in st["shown"]["inputs"]] == points
    prepared, shown, prompt = segmenter.prepare(speckle_image), None, Prompt()
    for x, y in points:  # the outline of the five-click prompt, each click fed the outline before it
        prompt = prompt.add_click(x, y)
        shown = segmenter.predict(prepared, prompt, None if shown is None else shown.mask)
    assert st["shown"]["outline"] == outline_polygons(shown.mask)
    assert "Outlined from 5 inputs" in view.status()


def test_cine_frames_bad_uploads_examples_and_the_model_panel(served, page, canvas, image_bytes, tmp_path):
    from playwright.sync_api import expect

    url, _ = served
    view = canvas(page)
    frames = np.random.default_rng(1).integers(0, 255, size=(3, 96, 128)).astype(np.uint8)
    cine = tmp_path / "cine.dcm"
    cine.write_bytes(image_bytes.dicom(frames, spacing=(0.2, 0.25)))
    first = opened(view, url, cine)
    st = view.click(64, 48)
    result = page.locator("#canvas .lc-result")
    assert "mm²" in result.inner_text() and "frame 0 of 3" in result.inner_text()
    page.locator("#frame input[type=range]").fill("2")  # another frame of the loop: its picture, the same inputs
    second = view.wait_picture(first["url"])
    page.wait_for_function(
        f"v => document.querySelector('{view.ROOT}').__liverclick.shown.version > v", arg=st["shown"]["version"]
    )
    assert view.state()["shown"]["inputs"] == st["shown"]["inputs"] and "frame 2 of 3" in result.inner_text()
    assert (second["width"], second["height"]) == (128, 96)

    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    gif = tmp_path / "loop.gif"
    gif.write_bytes(image_bytes.encode(frames[0], "GIF"))
    for bad, words in ((notes, "not an image file"), (gif, "GIF")):
        page.locator("#upload button[aria-label=Clear]").click()
        page.locator("#upload input[type=file]").set_input_files(str(bad))
        message = page.locator("#canvas .lc-message")
        message.filter(has_text=words).wait_for()

    page.locator("#upload button[aria-label=Clear]").click()
    page.get_by_text("example_phantom.png").first.click()  # an example opens like an upload
    example = view.wait_picture(second["url"])
    assert (example["width"], example["height"]) == (150, 100) and view.state()["message"] == ""

    card = page.locator("#model-card")  # open from the start
    card.wait_for()
    assert "Trained on: synthetic phantoms" in card.inner_text()
    page.get_by_text("The model file's card and input contract (JSON)").click()
    expect(page.locator("#model-card-raw")).to_contain_text("two_click_ji")


@pytest.fixture(scope="module")
def reviewing(tmp_path_factory, tiny_model, start_viewer):
    """(url, store, segmenter): a viewer with logins and a feedback store, serving the benign/malignant tiny model."""
    store = FeedbackStore.open(tmp_path_factory.mktemp("db") / "feedback.db")
    segmenter = Segmenter(tiny_model, provider="cpu")
    yield start_viewer(segmenter, build={"store": store}, auth=[("ann", "pw"), ("bob", "pw2")]), store, segmenter
    store.close()


def test_feedback_panel_in_chromium(reviewing, page, canvas, signed_in, scan, speckle_image):
    from playwright.sync_api import expect

    url, store, segmenter = reviewing
    predicted = segmenter.predict(speckle_image, Prompt().add_click(140, 60)).predicted_class
    other = next(c for c in ("benign", "malignant") if c != predicted)
    signed_in(page, url, "ann", "pw")
    submit, note = page.locator("#submit"), page.locator("#canvas .lc-review")  # the canvas says what is saved
    page.locator("#upload input[type=file]").set_input_files(scan)
    view = canvas(page)
    view.wait_picture()
    expect(note).to_contain_text("Outline a lesion to review it")
    page.locator("#verdict").get_by_label("Agree", exact=True).check()
    page.locator("#rating").get_by_label("3", exact=True).check()
    submit.click()  # nothing outlined yet: told so, nothing stored
    expect(page.locator("#canvas .lc-message")).to_contain_text("Not saved: outline a lesion first")
    view.click(140, 60)
    expect(note).to_contain_text("not saved yet")

    expect(page.locator("#corrected")).to_be_hidden()
    page.locator("#verdict").get_by_label("Disagree").check()
    page.locator("#rating").get_by_label("4", exact=True).check()
    submit.click()  # no corrected class yet: told so, nothing stored
    expect(page.locator("#canvas .lc-message")).to_contain_text(
        "Not saved: a reviewer who disagrees must give the corrected class"
    )
    assert store.count() == 0

    page.locator("#corrected input").click()
    page.get_by_role("option", name=other).click()
    page.locator("#accepted").get_by_role("checkbox").check()
    page.locator("#comment textarea").fill("margin slightly generous")
    submit.click()
    expect(note).to_contain_text("saved as #1")
    expect(page.locator("#verdict").get_by_label("Disagree")).not_to_be_checked()  # the form starts afresh
    (record,) = store.iter_records()
    assert (record.reviewer, record.agree, record.corrected_class) == ("ann", False, other)
    assert (record.outline_rating, record.accepted, record.comment) == (4, True, "margin slightly generous")
    assert record.prompt.to_dict() == {"clicks": [{"x": 140, "y": 60, "positive": True}]}
    page.locator("#verdict").get_by_label("Agree", exact=True).check()
    page.locator("#rating").get_by_label("4", exact=True).check()
    submit.click()  # a second press for the same outline stores nothing
    expect(page.locator("#canvas .lc-message")).to_contain_text("already saved as #1")
    assert store.count() == 1

    view.click(150, 70)  # a corrective click: a new outline to review
    expect(note).to_contain_text("not saved yet")
    view.key("z")  # undo: the outline saved as #1 again
    expect(note).to_contain_text("saved as #1")


def test_the_canvas_answers_only_its_signed_in_user(reviewing, page, canvas, signed_in, scan):
    url, _, _ = reviewing
    signed_in(page, url, "ann", "pw")
    page.locator("#upload input[type=file]").set_input_files(scan)
    view = canvas(page)
    view.wait_picture()
    view.click(140, 60)
    key, picture = page.evaluate(
        f"() => {{ const s = document.querySelector('{view.ROOT}').__liverclick; return [s.key, s.drawnUrl]; }}"
    )
    config = page.request.get(f"{url}config").json()
    (component,) = [c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "canvas"]
    body = {"session_hash": "x", "component_id": component, "fn_name": "canvas_act"}
    body["data"] = {"key": key, "picture": picture, "actions": [{"x": 150, "y": 70, "positive": True}]}
    endpoint = f"{url}gradio_api/component_server"
    assert httpx.post(endpoint, json=body).status_code == 401  # nobody signed in
    with httpx.Client() as bob:
        assert bob.post(f"{url}login", data={"username": "bob", "password": "pw2"}).status_code == 200
        answer = bob.post(endpoint, json=body)
        assert answer.status_code == 200 and "another login" in answer.json()["error"]
    answer = page.request.post(endpoint, data=body).json()  # ann, with her login cookie
    assert [i["x"] for i in answer["overlay"]["inputs"]] == [140, 150]
