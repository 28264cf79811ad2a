"""The page as a first-time user sees it, in real headless Chromium with the bundled model: the title and header
say which images the model is for and that it is for research, only the examples that fit it are offered, a box
gives one sentence about malignancy with the details on demand, and the model card reads as a summary.

With LIVERCLICK_SCREENSHOT_DIR set, the first page and the result panel are saved there as small JPEGs (the
README's pictures: docs/images/).
"""

import json
import os
import re
from pathlib import Path

import pytest

from core.runtime import load_model

pytestmark = [pytest.mark.browser, pytest.mark.slow]
EXAMPLES = Path(__file__).resolve().parents[1] / "webapp" / "examples"
SENTENCE = re.compile(
    r"^Malignancy score \(not a calibrated probability\): \d+%, (above|below) the [^.]+ thresholds?"
    r"( and (above|below) the [^.]+ thresholds?)?\.$"
)


def save(page, name: str, **kw) -> None:
    """A JPEG of the page (or of ``clip``) where LIVERCLICK_SCREENSHOT_DIR says, if it says."""
    folder = os.environ.get("LIVERCLICK_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), type="jpeg", quality=60, **kw)


def test_a_first_time_user_reads_what_the_model_is_what_it_says_and_its_card(page, canvas, start_viewer):
    from playwright.sync_api import expect

    model = load_model("default")
    url = start_viewer(model, build={"examples_dir": EXAMPLES})
    page.goto(url)
    notice = page.locator("#notice")
    expect(notice).to_be_visible()  # not folded away
    assert page.title() == "liverclick · breast ultrasound lesions · research only"
    assert "liverclick: breast ultrasound lesions" in page.locator("#title").inner_text()
    assert notice.inner_text().startswith(
        f"Research tool, not for diagnosis. Model: busi_joint_lite {model.version}, for breast ultrasound images: "
        "benign or malignant."
    )
    expect(page.get_by_text("busi_malignant_055.png")).to_be_visible()
    assert page.get_by_text("phantom_hcc.png").count() == 0  # a liver phantom would be called benign or malignant

    card = page.locator("#model-card")
    expect(card).to_be_visible()
    words = card.inner_text()
    assert f"busi_joint_lite {model.version} outlines and classifies lesions in breast ultrasound images" in words
    bm = model.card["metrics"]["benign_malignant"]
    low, high = bm["auroc_ci95"]
    assert f"Benign/malignant AUROC (0.5 is chance, 1 perfect)\t{bm['auroc']:.3f}\t{low:.3f}–{high:.3f}" in words
    assert "a score, not a calibrated probability" in words
    assert not any(raw in words for raw in ("noc85_ci95", "rates_at_points", "git_revision"))
    save(page, "first_page.jpg")

    view = canvas(page)
    page.get_by_text("busi_malignant_055.png").first.click()
    view.wait_picture()
    (x0, y0, x1, y1) = json.loads((EXAMPLES / "busi_malignant_055.json").read_text())["box"]
    view.drag((x0, y0), (x1, y1))
    view.settle(1)
    sentence = page.locator("#canvas .lc-sentence").inner_text()
    assert SENTENCE.match(sentence), sentence
    details = page.locator("#canvas .lc-details")
    assert not details.evaluate("d => d.open")  # on demand
    page.locator("#canvas .lc-details summary").click()
    youden = dict(model.spec.operating_points)["youden"]
    expect(details).to_contain_text(f"Youden threshold ({youden:.2f}): the score that best balanced")
    expect(details).to_contain_text("Not calibrated")
    save(page, "result_panel.jpg", clip=page.locator("#canvas").bounding_box())
