"""Review sessions: the worklist CSV, the model's first answers and uncertainty, the three orders, a reviewer's
progress, and the agreement export, from `liverclick review create` to `review export` and `feedback export`,
on SQLite and PostgreSQL."""

import csv
import json
import re
from pathlib import Path
from types import SimpleNamespace

import cv2
import gradio as gr
import numpy as np
import pytest

from core.cli import main as cli_main
from core.metrics import cohen_kappa, jaccard
from core.prompt import Click, Prompt
from core.runtime import Segmenter
from webapp import tab, text
from webapp.feedback.store import FeedbackStore
from webapp.handlers import Viewer
from webapp.review import chart
from webapp.review.agreement import agreement_markdown
from webapp.review.cases import WorklistError, deepest_point, read_worklist
from webapp.review.chart import agreement_chart
from webapp.review.desk import Desk
from webapp.review.ordering import class_uncertainty, first_answer, jittered, serving_order
from webapp.review.worklist import Worklists, next_after
from webapp.text import ORGANISERS_ONLY

CLASSES = ("benign", "malignant")
N = 8


def lesion(i: int) -> tuple[np.ndarray, np.ndarray]:
    """Image ``i``: speckle with a dark disk, and the disk's mask; sizes and places differ by case."""
    h, w = 90 + 6 * i, 120 + 4 * i
    cx, cy, r = 40 + 7 * i, h // 2, 10 + i
    img = np.random.default_rng(i).gamma(2.0, 50.0, size=(h, w)).clip(0, 255)
    yy, xx = np.mgrid[:h, :w]
    mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r**2
    img[mask] *= 0.2
    return img.astype(np.uint8), mask


@pytest.fixture
def worklist(tmp_path) -> Path:
    """A worklist CSV of N cases: images, reference masks and labels; case 2 gives its own prompt (a box)."""
    rows = []
    for i in range(N):
        img, mask = lesion(i)
        cv2.imwrite(str(tmp_path / f"img{i}.png"), img)
        cv2.imwrite(str(tmp_path / f"mask{i}.png"), mask.astype(np.uint8) * 255)
        row = {"image": f"img{i}.png", "mask": f"mask{i}.png", "label": CLASSES[i % 2], "prompt": ""}
        if i == 2:
            ys, xs = np.nonzero(mask)
            row["prompt"] = json.dumps(
                {"box": [int(xs.min()) - 3, int(ys.min()) - 3, int(xs.max()) + 3, int(ys.max()) + 3]}
            )
        rows.append(row)
    path = tmp_path / "worklist.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_the_worklist_is_read_whole_and_its_bad_rows_named(worklist, tmp_path):
    cases = read_worklist(worklist, CLASSES)
    assert len(cases) == N and cases[0].key == "img0.png#mask0.png" and cases[1].reference_label == "malignant"
    _, mask = lesion(0)
    assert cases[0].prompt == Prompt().add_click(*deepest_point(mask)) and mask[deepest_point(mask)[::-1]]
    assert cases[2].prompt.box is not None  # its own prompt
    assert deepest_point(np.pad(np.ones((3, 3), bool), ((1, 1), (2, 1)))) == (3, 2)  # the middle of a 3 x 3 block
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "image,mask,label,prompt\n"
        "img0.png,mask0.png,cyst,\n"  # not a class of the model
        "img1.png,,,\n"  # nothing to click on
        "missing.png,,,\n"
        "img1.png,mask0.png,,\n"  # a mask of another size
        'img3.png,,,"{""clicks"": [{""x"": 9999, ""y"": 1}]}"\n'
    )
    with pytest.raises(WorklistError) as err:
        read_worklist(bad, CLASSES)
    message = str(err.value)
    for row, reason in [(2, "'cyst' is not one of"), (3, "neither a 'prompt' nor a 'mask'"), (4, "no such file"),
                        (5, "the mask is"), (6, "outside the")]:  # fmt: skip
        assert f"bad.csv row {row}: " in message and reason in message


def test_uncertainty_and_the_three_orders(tiny_model):
    assert class_uncertainty({"a": 0.5, "b": 0.5}) == 1.0 and class_uncertainty({"a": 1.0, "b": 0.0}) == 0.0
    assert class_uncertainty({"a": 0.9, "b": 0.1}) == pytest.approx(0.2)
    u = [0.1, 0.9, 0.5, 0.9]
    assert serving_order(u, "manifest", 0) == [0, 1, 2, 3]
    assert serving_order(u, "uncertain", 0) == [1, 3, 2, 0]  # ties in manifest order
    assert serving_order(u, "random", 7) == serving_order(u, "random", 7) != serving_order(u, "random", 8)
    assert sorted(serving_order(u, "random", 7)) == [0, 1, 2, 3]
    rng = np.random.default_rng(0)
    prompt = Prompt().add_click(10, 10).add_box(0, 0, 50, 40)
    for _ in range(50):
        moved = jittered(prompt, 4.0, 60, 45, rng)
        click, box = moved.inputs
        assert np.hypot(click.x - 10, click.y - 10) <= 4.5 and click.positive
        assert 0 <= box.x0 < box.x1 <= 59 and 0 <= box.y0 < box.y1 <= 44 and abs(box.x1 - 50) <= 5
    model = Segmenter(tiny_model, provider="cpu")
    img, mask = lesion(3)
    answer = first_answer(model, model.prepare(img), Prompt().add_click(*deepest_point(mask)), seed=(0, 3))
    assert 0 <= answer.outline_instability <= 1 and 0 <= answer.uncertainty <= 1
    assert answer.class_uncertainty == class_uncertainty(answer.class_probs)


ANN_CLASSES = ["benign", "benign", "malignant", "malignant", "benign", "malignant", "benign", "benign"]
BOB_CLASSES = ["benign", "malignant", "malignant", "malignant", "benign"]


def test_a_review_session_from_creation_to_the_agreement_export(db_url, worklist, tiny_model, tmp_path, capsys):
    create = ["review", "create", "--db", db_url, "--name", "pilot", "--manifest", str(worklist)]
    create += ["--reviewers", "ann,bob", "--order", "uncertain", "--model", str(tiny_model), "--by", "org"]
    assert cli_main(create) == 0
    assert "review session 'pilot': 8 cases, uncertain order, reviewers ann, bob" in capsys.readouterr().out
    assert cli_main(create) == 2 and "a review session named 'pilot' exists already" in capsys.readouterr().err

    segmenter = Segmenter(tiny_model, provider="cpu")
    ann_classes = list(ANN_CLASSES)
    with FeedbackStore.open(db_url) as store:
        worklists = Worklists(store)
        session = worklists.session("pilot")
        cases = worklists.cases(session)
        assert [c.uncertainty for c in cases] == sorted((c.uncertainty for c in cases), reverse=True)
        assert sorted(c.manifest_row for c in cases) == list(range(2, 2 + N))
        assert [s.name for s in worklists.sessions("ann")] == ["pilot"] and worklists.sessions("eve") == []
        desk = Desk(Viewer(segmenter, store))

        # ann works through the page: the next case opens with the model's outline, she corrects and saves.
        page = tab.Tab(key="ann-folder/tab")
        for k in range(N):
            page = desk.open(page, "pilot", "ann", None)
            assert page.case.position == k and page.prediction is not None  # never a case she has done
            assert page.prompt == cases[k].prompt and np.array_equal(page.prediction.mask, cases[k].model_mask)
            x, y = page.prompt.all_clicks()[0].x, page.prompt.all_clicks()[0].y
            page = tab.click(segmenter, page, x + 2, y)  # a corrective click
            review = _review(page, ann_classes[k])
            page = tab.submit_review(store, segmenter, page, "ann", review)
        with pytest.raises(WorklistError, match="all 8 cases of session 'pilot' are reviewed"):
            desk.open(page, "pilot", "ann", None)
        with pytest.raises(Exception, match="you are not a reviewer of session 'pilot'"):
            desk.open(page, "pilot", "eve", None)
        again = desk.open(page, "pilot", "ann", 1)  # she goes back to case 2 and changes her mind
        tab.submit_review(store, segmenter, again, "ann", _review(again, "malignant"))
        ann_classes[1] = "malignant"

        # bob works through the API: the next case, then his review of it with his own prompt.
        bob = SimpleNamespace(username="bob")
        assert desk.worklist(bob) == [{"session": "pilot", "cases": N, "reviewed": 0, "next": 1}]
        for k, label in enumerate(BOB_CLASSES):
            image, info = desk.case("pilot", bob)
            assert info["position"] == k + 1 and info["of"] == N and not info["reviewed"]
            assert cv2.imread(image.path, cv2.IMREAD_GRAYSCALE).shape == cases[k].model_mask.shape
            prompt = json.dumps(Prompt(cases[k].prompt.inputs + (Click(1, 1, False),)).to_dict())
            predicted = segmenter.predict(
                desk.picture(worklists.case(session, k)), Prompt.from_dict(json.loads(prompt))
            )
            agree = predicted.predicted_class == label
            saved = desk.review("pilot", k + 1, prompt, agree, 4, True, bob, None if agree else label, "", f"bob-{k}")
            assert saved["next"] == (k + 2 if k + 1 < N else None)
            assert (
                desk.review("pilot", k + 1, prompt, agree, 4, True, bob, None if agree else label, "", f"bob-{k}")
                == saved
            )
            with pytest.raises(Exception, match=f"conflict: request id bob-{k} was already used"):  # other answers
                desk.review("pilot", k + 1, prompt, agree, 3, True, bob, None if agree else label, "", f"bob-{k}")
        assert worklists.progress(session) == {"ann": N, "bob": len(BOB_CLASSES)}
        for bad in ("x", float("inf"), 0, N + 1):
            with pytest.raises(Exception, match="whole number from 1|has cases 1 to 8"):
                desk.case("pilot", bob, position=bad)

    assert cli_main(["review", "status", "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "pilot: 8 cases, uncertain order, created by org" in out and "ann: 8 of 8" in out and "bob: 5 of 8" in out
    assert cli_main(["review", "export", "--db", db_url, "--name", "pilot", "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "agreement.json").read_text())
    ann, bob = report["reviewers"]
    assert (ann["reviewed"], bob["reviewed"], ann["progress"]) == (N, 5, 1.0)
    (pair,) = report["pairs"]
    shared = ann_classes[:5]
    assert pair["shared_cases"] == 5 and pair["kappa"] == pytest.approx(cohen_kappa(shared, BOB_CLASSES), abs=1e-4)
    assert pair["class_agreement"] == pytest.approx(np.mean([a == b for a, b in zip(shared, BOB_CLASSES, strict=True)]))
    assert 0 < pair["outline_jaccard"] <= 1 and 0 < ann["outline_jaccard_with_model"] < 1  # ann moved her clicks
    references = [CLASSES[(c.manifest_row - 2) % 2] for c in cases]
    accuracy = np.mean([a == r for a, r in zip(ann_classes, references, strict=True)])
    assert ann["class_accuracy_against_reference"] == pytest.approx(accuracy, abs=1e-4)
    model = report["model_vs_reference"]
    assert model["cases"] == N and model["outline_jaccard"] == pytest.approx(
        np.mean([jaccard(c.model_mask, c.reference_mask) for c in cases]), abs=1e-4
    )
    rows = _csv(tmp_path / "out" / "reviews.csv")
    assert len(rows) == N + 5 and {r["reviewer"] for r in rows} == {"ann", "bob"}
    md = (tmp_path / "out" / "agreement.md").read_text()
    assert "| ann | 8 of 8 |" in md and "| ann / bob | 5 |" in md and "not for diagnosis" in md
    assert (tmp_path / "out" / "agreement.csv").read_text().startswith("kind,who,measure,value")

    # The accepted reviews become training data, naming their session and case (the pixels come with the session).
    assert cli_main(["feedback", "export", "--db", db_url, "--out", str(tmp_path / "train")]) == 0
    manifest = _csv(tmp_path / "train" / "manifest.csv")
    assert manifest and all(r["review_session"] == str(session.id) and r["review_case"] for r in manifest)


def _review(page: tab.Tab, label: str) -> tab.Review:
    agree = page.prediction.predicted_class == label
    return tab.Review(agree=agree, outline_rating=4, accepted=True, corrected_class=None if agree else label)


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_panels_show_reviewers_their_own_progress_and_organisers_the_report(db_url, worklist, tiny_model):
    from webapp.accounts import Account, Accounts
    from webapp.review.panel import ReviewPanels

    create = ["review", "create", "--db", db_url, "--name", "pilot", "--manifest", str(worklist), "--reviewers", "ann"]
    assert cli_main([*create, "--model", str(tiny_model)]) == 0
    segmenter = Segmenter(tiny_model, provider="cpu")
    with FeedbackStore.open(db_url) as store:
        accounts = Accounts([Account("ann", "pw"), Account("org", "pw", "organiser")])
        panels = ReviewPanels(Desk(Viewer(segmenter, store, public=(worklist.parent,))), accounts)
        ann, org = SimpleNamespace(username="ann"), SimpleNamespace(username="org")
        sessions, line, box, organiser, every = panels.on_load(ann)
        assert sessions.choices == [("pilot", "pilot")] and box.visible and line.startswith("8 cases")
        assert not organiser.visible and every.choices == []
        key, canvas, line = panels.on_next("", "pilot", ann)
        assert panels.desk.viewer.tabs.get(key, "ann").case.position == 0 and canvas["overlay"]["outline"]
        # The case open is never "next", and its id is on screen.
        assert line == f"**Case 1 of {N}** · 0 reviewed · next: case 2 · case id: img0.png#mask0.png"
        assert panels.on_progress(key, "pilot", ann) == line
        assert panels.on_open(key, "pilot", "", ann) == (gr.skip(), gr.skip(), gr.skip())  # nothing typed yet
        key, canvas, line = panels.on_open(key, "pilot", f"{N}", ann)
        assert line.startswith(f"**Case {N} of {N}** · 0 reviewed · next: case 1 ·")  # the first after it, wrapped
        key, canvas, line = panels.on_next(key, "pilot", ann)
        assert line.startswith(f"**Case 1 of {N}**")
        # Another image while the case's review is unsaved: said, and the tab no longer holds the case.
        key, canvas, _ = panels.desk.viewer.on_file(key, str(worklist.parent / "img3.png"), ann)
        assert "Case 1 of review session 'pilot' was left before its review was saved" in canvas["overlay"]["message"]
        assert panels.desk.viewer.tabs.get(key, "ann").case is None
        assert panels.on_report("pilot", ann) == (ORGANISERS_ONLY, None, None, None)
        report, progress, jaccard, kappa = panels.on_report("pilot", org)
        assert "| ann | 0 of 8 |" in report and list(progress["reviewed"]) == [0] and kappa.empty
        assert panels.on_load(org)[3].visible and "no review session names you" in panels.on_load(org)[1].lower()
        assert "not a reviewer" in panels.progress_line(None, "pilot", "org")


def test_progress_never_names_the_open_case_as_next():
    line = text.progress_line(
        size=5, reviewed=1, shown=1, upcoming=next_after({0}, 5, 1), case_key="c2", shown_done=False
    )
    assert line == "**Case 2 of 5** · 1 reviewed · next: case 3 · case id: c2"
    assert next_after({0, 2, 3, 4}, 5, 1) is None
    last = text.progress_line(size=5, reviewed=4, shown=1, upcoming=None, case_key="c2", shown_done=False)
    assert last == "**Case 2 of 5** · 4 reviewed · this is the last case left · case id: c2"
    done = text.progress_line(size=5, reviewed=5, shown=1, upcoming=None, case_key="c2", shown_done=True)
    assert "all reviewed" in done


def test_agreement_shares_carry_their_denominators_and_the_chart_keeps_a_fixed_axis():
    reviewers = [
        {"reviewer": "ann", "reviewed": 1, "outline_jaccard_with_model": 0.98, "outlines_with_reference": 1,
         "outline_jaccard_against_reference": 0.1},
        {"reviewer": "bob", "reviewed": 0, "outline_jaccard_with_model": None, "outlines_with_reference": 0,
         "outline_jaccard_against_reference": None},
    ]  # fmt: skip
    svg = agreement_chart(reviewers)
    bars = {
        (m["data-reviewer"], m["data-against"]): m
        for m in (dict(re.findall(r'([\w-]+)="([^"]*)"', r)) for r in re.findall(r"<rect [^>]*data-against[^>]*>", svg))
    }
    model, reference = bars["ann", "model"], bars["ann", "reference"]
    base = lambda bar: float(bar["y"]) + float(bar["height"])  # noqa: E731
    assert base(model) == base(reference) and model["x"] != reference["x"]  # side by side, not stacked
    assert float(model["height"]) == pytest.approx(0.98 * chart.PLOT_H)  # a fixed 0-1 axis
    assert float(reference["height"]) == pytest.approx(0.1 * chart.PLOT_H)
    assert svg.count("n = 1") == 2 and svg.count("n = 0") == 2 and ("bob", "model") not in bars
    report = {
        "session": "s", "notice": "n", "cases": 1, "ordering": "given", "model": "m",
        "reviewers": [{**reviewers[0], "accepted": 1, "class_agreement_with_model": 1.0, "classes_with_reference": 1,
                       "class_accuracy_against_reference": 0.0}],
        "pairs": [{"a": "ann", "b": "bob", "shared_cases": 0, "class_agreement": None, "kappa": None,
                   "outline_jaccard": None}],
        "model_vs_reference": {"cases": 1, "labelled": 1, "outlined": 1, "class_accuracy": 1.0, "outline_jaccard": 0.9},
    }  # fmt: skip
    markdown = agreement_markdown(report)
    assert "| ann | 1 of 1 | 1 | 100% (1 of 1) | 0.980 | 0% (0 of 1) | 0.100 |" in markdown
    assert "class accuracy 100% (1 of 1)" in markdown
