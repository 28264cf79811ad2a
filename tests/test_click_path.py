"""One click path: the history the viewer stores for its gestures (clicks, a box after clicks, undo, corrections) is
replayed to the outline it showed, pixel for pixel, by /segment and by `liverclick predict`; and clicks before a
box change nothing anywhere (/segment, predict, /review, a review case reopened in the viewer).

The model is the tiny iterative one (it sees its previous outline), under zoom-in, so the order of a history and
what each pass was fed show in the outline."""

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.cli import main as cli_main
from core.contract import InputSpec
from core.prompt import Prompt
from core.runtime import Segmenter
from webapp.feedback.store import FeedbackStore
from webapp.overlay import outline_polygons
from webapp.review.worklist import Worklists

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ITERATIVE = InputSpec(
    input_size=64,
    zoom_context=1.5,
    zoom_min_side=16,
    class_names=("benign", "malignant"),
    malignant_classes=("malignant",),
    previous_mask=True,
)
ANN = ("ann", "pw")
BOX = {"box": [110, 30, 170, 90]}
STRAYS = [{"x": 40, "y": 100, "positive": True}, {"x": 150, "y": 60, "positive": False}]  # clicks before the box
CASE_PROMPTS = ({"inputs": [*STRAYS, BOX]}, BOX)  # the review session's two cases: the same box, with and without


@pytest.fixture(scope="module")
def served(make_model, start_viewer, image_bytes, tmp_path_factory):
    """(url, model path, store, predictor, folder): the viewer with a login, a feedback store and a review session
    ("click path") of two cases on the speckle image, whose first prompts are CASE_PROMPTS."""
    folder = tmp_path_factory.mktemp("click_path")
    model = make_model(ITERATIVE)
    cv2.imwrite(str(folder / "scan.png"), image_bytes.lesion(0, (120, 200), (140, 60), radius=20))
    with open(folder / "cases.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["image", "case_id", "prompt"])
        writer.writeheader()
        writer.writerows(
            {"image": "scan.png", "case_id": k, "prompt": json.dumps(p)} for k, p in enumerate(CASE_PROMPTS)
        )
    db = folder / "feedback.db"
    create = ["review", "create", "--db", str(db), "--name", "click path", "--manifest", str(folder / "cases.csv")]
    assert cli_main([*create, "--reviewers", "ann", "--model", str(model), "--order", "manifest"]) == 0
    store = FeedbackStore.open(db)
    predictor = Segmenter(model, provider="cpu")
    yield start_viewer(predictor, build={"store": store}, auth=[ANN]), model, store, predictor, folder
    store.close()


def download(page, kind: str) -> bytes:
    """A download of the canvas's toolbar (``mask`` or ``report``), made by the server when asked for."""
    with page.expect_download() as done:
        page.locator(f"#canvas [data-download={kind}]").click()
    return Path(done.value.path()).read_bytes()


def png_mask(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE) > 0


def segment(url: str, image: Path, prompt: dict) -> np.ndarray:
    from gradio_client import Client, handle_file

    client = Client(url, auth=ANN, verbose=False)
    mask_file, _ = client.predict(handle_file(str(image)), json.dumps(prompt), api_name="/segment")
    return cv2.imread(mask_file, cv2.IMREAD_GRAYSCALE) > 0


def predicted(model: Path, folder: Path, prompts: dict[str, dict]) -> dict[str, np.ndarray]:
    """`liverclick predict` on the scan with each prompt: the masks by request id."""
    requests = folder / "requests.jsonl"
    requests.write_text("".join(json.dumps({"id": k, "image": "scan.png", **p}) + "\n" for k, p in prompts.items()))
    out = folder / "predicted"
    assert cli_main(["predict", "--model", str(model), "--requests", str(requests), "--out", str(out)]) == 0
    return {k: cv2.imread(str(out / f"{k}.png"), cv2.IMREAD_GRAYSCALE) > 0 for k in prompts}


def test_the_stored_history_of_the_viewers_gestures_gives_its_outline_on_segment_and_predict(
    served, page, canvas, signed_in
):
    url, model, _, predictor, folder = served
    signed_in(page, url, *ANN)
    page.locator("#upload input[type=file]").set_input_files(str(folder / "scan.png"))
    view = canvas(page)
    view.wait_picture()
    view.click(40, 100)  # a lesion click in the wrong place
    view.click(150, 60, shift=True)  # a background click
    drawn = view.state()["drawn"]
    view.drag((110, 30), (170, 90))  # a box after the clicks: a new object
    boxed = view.settle(drawn + 1)["shown"]
    view.click(120, 80, button="right")  # a correction ...
    view.key("z")  # ... taken back
    assert view.state()["shown"]["outline"] == boxed["outline"] and view.state()["shown"]["inputs"] == [BOX]
    view.click(165, 85, button="right")  # corrections: background, then lesion
    shown = view.click(140, 50)["shown"]
    assert len(shown["inputs"]) == 3 and shown["inputs"][0] == BOX  # the inputs in force

    history = json.loads(download(page, "report"))["prompt"]  # what the tab stored: every input, in order
    assert [("box" in i) for i in history["inputs"]] == [False, False, True, False, False]
    outline = png_mask(download(page, "mask"))
    assert outline_polygons(outline) == shown["outline"] and outline.any()
    in_force = Prompt.from_dict(history).in_force
    alone = Prompt(in_force).to_dict()
    assert np.array_equal(segment(url, folder / "scan.png", history), outline)
    assert np.array_equal(segment(url, folder / "scan.png", alone), outline)
    masks = predicted(model, folder, {"history": history, "alone": alone})
    assert np.array_equal(masks["history"], outline) and np.array_equal(masks["alone"], outline)
    # Were every click in force (the box first, then all the clicks), the stray lesion click would show.
    every = Prompt((Prompt.from_dict(history).box, *(i for i in Prompt.from_dict(history).inputs if "x" in vars(i))))
    assert not outline[100, 40] and predictor.predict(cv2.imread(str(folder / "scan.png"), 0), every).mask[100, 40]


def test_clicks_before_a_box_change_nothing_in_review_cases_and_reviews(served, page, canvas, signed_in):
    from playwright.sync_api import expect

    url, _, store, predictor, folder = served
    scan = cv2.imread(str(folder / "scan.png"), cv2.IMREAD_GRAYSCALE)
    expected = predictor.replay(scan, Prompt.from_dict(BOX)).mask
    signed_in(page, url, *ANN)
    view = canvas(page)
    for number in (1, 2):  # the case opened with [clicks, box], then the one opened with [box]
        version = view.state()["shown"]["version"]
        page.locator("#case-number input").fill(str(number))
        page.locator("#open-case").click()
        expect(page.locator("#worklist-progress")).to_contain_text(f"Case {number} of 2")
        page.wait_for_function(  # the same pixels: the same picture; a newer drawing of the tab
            f"v => {{ const s = document.querySelector('{view.ROOT}').__liverclick;"
            " return !!s.picture && s.shown.version > v && s.shown.outline.length > 0; }",
            arg=version,
        )
        assert view.state()["shown"]["outline"] == outline_polygons(expected), number
        assert view.state()["shown"]["inputs"] == [BOX]

    from gradio_client import Client

    client = Client(url, auth=ANN, verbose=False)
    for position in (1, 2):  # each case reviewed with either prompt
        for prompt in CASE_PROMPTS:
            client.predict("click path", position, json.dumps(prompt), True, 4, True, api_name="/review")
    records = list(store.iter_records())
    assert len(records) == 4 and all(np.array_equal(r.mask, expected) for r in records)
    worklists = Worklists(store)
    first_answers = [c.model_mask for c in worklists.cases(worklists.session("click path"))]
    assert all(np.array_equal(m, expected) for m in first_answers)  # the model's first answers, stored at creation
