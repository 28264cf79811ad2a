"""What the canvas is given, without a browser: the overlay's polygons and words, and the tabs held by key."""

import dataclasses
import threading
import time
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from webapp import tab
from webapp.files import owner
from webapp.overlay import outline_polygons, overlay, review_line
from webapp.tabs import TabError, Tabs


@pytest.fixture
def outlined(segmenter, speckle_image):
    opened = tab.open_image(
        segmenter,
        tab.Tab(key=f"{owner('ann')}/tab"),
        cv2.imencode(".png", speckle_image)[1].tobytes(),
        name="s.png",
    )
    return tab.click(segmenter, opened, 140, 60)


def test_outline_polygons_trace_each_blob_through_its_boundary_pixels():
    mask = np.zeros((60, 80), bool)
    yy, xx = np.mgrid[:60, :80]
    mask[(xx - 25) ** 2 + (yy - 30) ** 2 <= 12**2] = True
    mask[5:12, 60:75] = True
    polygons = outline_polygons(mask)
    assert len(polygons) == 2 and [60, 5] in polygons[0] + polygons[1]  # the rectangle's corner pixel
    drawn = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(drawn, [np.array(p, np.int32) for p in polygons], 1)
    assert np.array_equal(drawn.astype(bool), mask)  # the polygons are the mask, pixel for pixel
    assert outline_polygons(np.zeros((5, 5), bool)) == []


def test_overlay_holds_inputs_outline_diameter_and_result(segmenter, outlined):
    boxed = tab.click(segmenter, tab.box(segmenter, outlined, 120, 40, 160, 80), 100, 60, positive=False)
    o = overlay(boxed, segmenter, "a message")
    assert o["inputs"] == [{"box": [120, 40, 160, 80]}, {"x": 100, "y": 60, "positive": False}]  # in force
    assert o["version"] == boxed.version and o["can_undo"] and o["message"] == "a message" and o["review"] is None
    assert overlay(boxed, segmenter, reviews=True)["review"] == review_line(boxed)
    assert o["outline"] == outline_polygons(boxed.prediction.mask)
    assert o["diameter"] == [list(e) for e in boxed.measurements.diameter_endpoints]
    r = o["result"]
    assert r["classes"] == sorted(r["classes"], key=lambda c: -c["p"]) and len(r["classes"]) == 4
    assert {c["name"] for c in r["classes"] if c["malignant"]} == {"metastasis", "hcc"}
    assert {c["label"] for c in r["classes"]} >= {"hcc (malignant)", "cyst"}
    assert r["malignant_prob"] == pytest.approx(boxed.prediction.malignant_prob)
    assert r["malignant_label"] == "Malignancy score"
    assert r["sentence"] == f"Malignancy score (not a calibrated probability): {r['malignant_prob']:.0%}."
    assert dict(r["rows"])["Longest diameter"].endswith(" px")
    empty = overlay(tab.clear(boxed), segmenter)
    assert empty["outline"] == [] and empty["result"] is None and empty["diameter"] is None


def test_the_malignancy_output_is_one_sentence_with_the_details_behind_it(segmenter, outlined):
    p = dataclasses.replace(
        outlined.prediction, malignant_prob=0.34, operating_points=(("sensitivity_90", 0.19), ("sensitivity_95", 0.41))
    )
    held_out = {"split": "x.csv [test]", "benign_malignant": {"calibration": {"per_input": {"ece": 0.03}}}}
    checked = SimpleNamespace(
        spec=segmenter.spec, provider="cpu", card={**segmenter.card, "metrics": held_out, "calibration": {}}
    )
    r = overlay(dataclasses.replace(outlined, prediction=p), checked)["result"]
    assert r["sentence"] == (
        "Probability of malignancy: 34%, above the 90%-sensitivity threshold and below the 95%-sensitivity threshold."
    )
    assert r["details"][0] == (
        "90%-sensitivity threshold (0.19): 90% of the malignant lesions in the validation images scored at or above it."
    )
    caveats = [line for line in r["details"] if "chance of cancer" in line]
    assert caveats == ["Being above the 90%-sensitivity threshold is not a 90% chance of cancer."]  # not the 95%'s
    # A card with calibration fitted but no held-out check: a score, not a probability.
    fitted = SimpleNamespace(
        spec=segmenter.spec, provider="cpu", card={**segmenter.card, "calibration": {"temperature": 2}}
    )
    r = overlay(dataclasses.replace(outlined, prediction=p), fitted)["result"]
    assert r["malignant_label"] == "Malignancy score" and "Not calibrated" in r["details"][-1]
    assert r["sentence"].startswith("Malignancy score (not a calibrated probability): 34%")


def test_tabs_hold_each_tab_for_its_owner_only_and_stamp_its_versions():
    tabs = Tabs(capacity=2, ttl_s=60)
    key = f"{owner('ann')}/one"
    first = tabs.put(tab.Tab(key=key))
    assert tabs.get(key, "ann") is first and first.version == 1
    second = tabs.put(tab.Tab(key=key))  # a newer state, whatever version it carried
    assert second.version == 2 and tabs.get(key, "ann") is second
    with pytest.raises(TabError, match="another login"):
        tabs.get(key, "bob")
    with pytest.raises(TabError, match="expired"):
        tabs.get("nobody/tab", "ann")
    with pytest.raises(TabError, match="expired"), tabs.hold("nobody/tab", "ann"):
        pass
    tabs.put(tab.Tab(key=f"{owner('ann')}/two"))
    tabs.put(tab.Tab(key=f"{owner('ann')}/three"))  # over capacity: the least recently used goes
    with pytest.raises(TabError, match="expired"):
        tabs.get(key, "ann")
    tabs.drop(f"{owner('ann')}/two")
    with pytest.raises(TabError, match="expired"):
        tabs.get(f"{owner('ann')}/two", "ann")


def test_tabs_expire_and_apply_one_change_at_a_time():
    tabs = Tabs(capacity=10, ttl_s=0.05)
    key = f"{owner(None)}/tab"
    tabs.put(tab.Tab(key=key))
    assert tabs.get(key, None).key == key
    time.sleep(0.1)
    with pytest.raises(TabError, match="expired"):
        tabs.get(key, None)
    tabs = Tabs(capacity=10, ttl_s=60)
    tabs.put(tab.Tab(key=key))
    order = []

    def work(name):
        with tabs.hold(key, None):
            order.append((name, "in"))
            time.sleep(0.05)
            order.append((name, "out"))

    threads = [threading.Thread(target=work, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [step for _, step in order] == ["in", "out", "in", "out"]
