"""One worklist in real headless Chromium: two reviewers work through ten cases each, with corrective clicks, and
the organiser reads their agreement."""

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from core.cli import main as cli_main
from core.metrics import cohen_kappa
from core.prompt import Prompt
from core.runtime import Segmenter
from webapp.accounts import Account, Accounts
from webapp.feedback.store import FeedbackStore
from webapp.review.agreement import agreement_report
from webapp.review.worklist import Worklists

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CASES = 10
LOGINS = {"ann": "ann-pw-123", "bob": "bob-pw-456", "org": "org-pw-789"}
BOB_DISAGREES = {3, 7}  # the cases (from 1) where bob gives the other class
CORRECTION = (6, -4)  # where the reviewers click, from the first click


@pytest.fixture
def worklist_server(tiny_model, start_viewer, tmp_path, image_bytes):
    """(url, store, predicted classes): a viewer with ann and bob (reviewers), org (organiser) and a session of ten
    cases, each with the class the model predicts after the first click and the test's correction (CORRECTION)."""
    rows, predicted = [], []
    model = Segmenter(tiny_model, provider="cpu")
    for i in range(CASES):
        h, w = 100 + 4 * i, 150 + 5 * i
        pixels = image_bytes.lesion(70 + i, (h, w), (w // 2, h // 2))
        (tmp_path / f"case{i}.png").write_bytes(image_bytes.encode(pixels, "PNG"))
        rows.append({"image": f"case{i}.png", "prompt": json.dumps({"clicks": [{"x": w // 2, "y": h // 2}]})})
        corrected = Prompt().add_click(w // 2, h // 2).add_click(w // 2 + CORRECTION[0], h // 2 + CORRECTION[1])
        predicted.append(model.predict(pixels, corrected).predicted_class)
    with open(tmp_path / "worklist.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["image", "prompt"])
        writer.writeheader()
        writer.writerows(rows)
    db = str(tmp_path / "feedback.db")
    create = ["review", "create", "--db", db, "--name", "browser pilot", "--manifest", str(tmp_path / "worklist.csv")]
    assert cli_main([*create, "--reviewers", "ann,bob", "--model", str(tiny_model), "--by", "org"]) == 0
    store = FeedbackStore.open(db)
    roles = {"org": "organiser"}
    accounts = Accounts([Account(user, pw, roles.get(user, "reviewer")) for user, pw in LOGINS.items()])
    url = start_viewer(model, build={"store": store, "accounts": accounts}, auth=accounts)
    yield url, store, predicted
    store.close()


def test_two_reviewers_work_through_a_worklist_to_the_agreement_report(worklist_server, chromium, canvas, signed_in):
    from playwright.sync_api import expect, sync_playwright

    url, store, predicted = worklist_server

    def sign_in(browser, url: str, user: str):
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        signed_in(page, url, user, LOGINS[user])
        return page

    with sync_playwright() as p:
        browser = chromium(p)
        for user in ("ann", "bob"):
            page = sign_in(browser, url, user)
            progress = page.locator("#worklist-progress")
            expect(progress).to_contain_text("0 reviewed · next: case 1")
            number = page.locator("#case-number input, #case-number textarea")
            expect(number).to_have_value("")  # empty until typed: no 0, nothing marked invalid
            assert number.get_attribute("aria-invalid") in (None, "false")
            expect(page.locator("#organiser")).to_be_hidden()  # reviewers see their own work only
            view, shown = canvas(page), None
            for k in range(1, CASES + 1):
                page.locator("#next-case").click()
                expect(progress).to_contain_text(f"Case {k} of {CASES} · {k - 1} reviewed")
                expect(progress).to_contain_text(f"case id: case{k - 1}.png")
                if k < CASES:
                    expect(progress).not_to_contain_text(f"next: case {k} ")
                shown = view.wait_picture(shown and shown["url"])
                w, h = 150 + 5 * (k - 1), 100 + 4 * (k - 1)
                assert (shown["width"], shown["height"]) == (w, h)
                view.click(w // 2 + CORRECTION[0], h // 2 + CORRECTION[1])  # a corrective lesion click
                expect(page.locator("#canvas .lc-status")).to_contain_text("Outlined from 2 inputs")
                if user == "bob" and k in BOB_DISAGREES:
                    page.locator("#verdict").get_by_label("Disagree").check()
                    page.locator("#corrected input").click()
                    other = next(c for c in ("benign", "malignant") if c != predicted[k - 1])
                    page.get_by_role("option", name=other).click()
                else:
                    page.locator("#verdict").get_by_label("Agree", exact=True).check()
                page.locator("#rating").get_by_label("4", exact=True).check()
                page.locator("#accepted").get_by_role("checkbox").check()
                page.locator("#submit").click()
                expect(page.locator("#canvas .lc-review")).to_contain_text("saved as #")
                expect(progress).to_contain_text(f"{k} reviewed")
            expect(progress).to_contain_text("all reviewed")
            page.close()

        page = sign_in(browser, url, "org")
        organiser = page.locator("#organiser")
        expect(organiser).to_be_visible()
        organiser.get_by_text("Organiser: review sessions").click()
        page.locator("#organiser-session input").click()
        page.get_by_role("option", name="browser pilot").click()
        report = page.locator("#organiser-report")
        expect(report).to_contain_text("ann / bob")
        text = report.inner_text()
        chart = page.locator("#agreement-chart svg")
        expect(chart.locator("rect[data-against=model]")).to_have_count(2)  # ann's and bob's, beside...
        expect(chart.locator("rect[data-against=reference]")).to_have_count(0)  # ...no reference outline here
        assert chart.inner_html().count("n = 10") == 2
        if os.environ.get("LIVERCLICK_SCREENSHOT_DIR"):  # the README's picture of the organiser's view
            shot = Path(os.environ["LIVERCLICK_SCREENSHOT_DIR"]) / "organiser_view.jpg"
            organiser.screenshot(path=str(shot), type="jpeg", quality=60)
        browser.close()

    worklists = Worklists(store)
    session = worklists.session("browser pilot")
    assert worklists.progress(session) == {"ann": CASES, "bob": CASES}
    agreement, rows = agreement_report(worklists, session)
    classes = {who: [r["reviewer_class"] for r in rows if r["reviewer"] == who] for who in ("ann", "bob")}
    assert sum(a != b for a, b in zip(classes["ann"], classes["bob"], strict=True)) == len(BOB_DISAGREES)
    (pair,) = agreement["pairs"]
    assert pair["kappa"] == pytest.approx(cohen_kappa(classes["ann"], classes["bob"]), abs=1e-4)
    assert f"{pair['kappa']:.3f}" in text and "10 of 10" in text
    records = list(store.iter_records(images=False, session_id=session.id))
    assert len(records) == 2 * CASES and all(len(r.prompt) == 2 for r in records)  # the first click and a correction
    assert all(np.count_nonzero(r.mask) for r in records)
