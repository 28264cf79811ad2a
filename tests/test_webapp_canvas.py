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
    assert r["malignant_label"] == "Malignant (model output, not calibrated)"
    assert r["operating_points"] == [] and dict(r["rows"])["Longest diameter"].endswith(" px")
    empty = overlay(tab.clear(boxed), segmenter)
    assert empty["outline"] == [] and empty["result"] is None and empty["diameter"] is None


def test_operating_points_are_said_with_what_they_mean(segmenter, outlined):
    p = dataclasses.replace(
        outlined.prediction, malignant_prob=0.34, operating_points=(("sensitivity_90", 0.19), ("sensitivity_95", 0.41))
    )
    calibrated = SimpleNamespace(
        spec=segmenter.spec, provider="cpu", card={**segmenter.card, "calibration": {"temperature": 1.7}}
    )
    r = overlay(dataclasses.replace(outlined, prediction=p), calibrated)["result"]
    first, second = r["operating_points"]
    assert first["statement"] == "above the 90%-sensitivity threshold (0.19)"
    assert second["statement"] == "below the 95%-sensitivity threshold (0.41)"
    assert (
        "chosen on validation images so that 90% of the malignant lesions there scored at or above it"
        in (first["meaning"])
    )
    assert (
        "not a 90% chance of cancer" in first["meaning"]
        and r["malignant_label"] == "Malignant (calibrated probability)"
    )


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
