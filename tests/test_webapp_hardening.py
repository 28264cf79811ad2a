"""Hosted-demo hardening of the viewer's server: time limit, bounded queue, upload size, crash isolation, and the
/feedback endpoint's access rules (a login, a store, the server's own prediction)."""

import json
import logging
import threading
import time

import cv2
import httpx
import numpy as np
import pytest

from core.runtime import Segmenter
from webapp.feedback.store import FeedbackStore
from webapp.handlers import Deadline, RequestTimeout

CLICK = json.dumps({"clicks": [{"x": 140, "y": 60, "positive": True}]})


def test_deadline_gives_up_waiting_and_counts_the_wait_for_a_worker():
    deadline = Deadline(0.3, workers=1)
    assert deadline.run(lambda: 7) == 7
    release = threading.Event()
    start = time.perf_counter()
    with pytest.raises(RequestTimeout, match="longer than the server's limit of 0.3 s"):
        deadline.run(release.wait)  # runaway work: the caller is answered, the worker stays busy
    with pytest.raises(RequestTimeout):
        deadline.run(lambda: 7)  # waits for the busy worker, within the same limit
    assert time.perf_counter() - start < 2.0
    release.set()
    assert deadline.run(lambda: 8) == 8


@pytest.mark.slow
def test_a_slow_prediction_is_answered_at_the_time_limit(faulty_segmenter, start_viewer, scan):
    from gradio_client import Client, handle_file

    slow = faulty_segmenter()
    client = Client(start_viewer(slow, build={"time_limit_s": 0.5}), verbose=False)
    slow.delay = 3.0
    start = time.perf_counter()
    with pytest.raises(Exception, match="longer than the server's limit of 0.5 s"):
        client.predict(handle_file(scan), CLICK, api_name="/segment")
    waited = time.perf_counter() - start
    print(f"\na 3 s prediction under a 0.5 s limit was answered after {waited:.2f} s")
    assert waited < slow.delay  # answered before the prediction could have finished
    slow.delay = 0.0
    time.sleep(3.0)  # the abandoned prediction finishes on its worker
    _, result = client.predict(handle_file(scan), CLICK, api_name="/segment")
    assert result["area_px"] > 0


@pytest.mark.slow
def test_the_queue_is_bounded(faulty_segmenter, start_viewer, scan):
    from gradio_client import Client, handle_file

    slow = faulty_segmenter()
    slow.delay = 1.0
    url = start_viewer(slow, max_concurrency=1, queue_size=2)
    outcomes = []
    ready = threading.Barrier(8, timeout=60)

    def one() -> None:
        try:
            client = Client(url, verbose=False)
            ready.wait()  # all eight at once, to one worker and a queue of two
            client.predict(handle_file(scan), CLICK, api_name="/segment")
            outcomes.append("answered")
        except Exception as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    refused = [o for o in outcomes if o != "answered"]
    assert len(outcomes) == 8 and outcomes.count("answered") >= 1 and refused
    assert all("queue is full" in o.lower() for o in refused), refused


@pytest.mark.slow
def test_an_upload_over_the_size_limit_is_refused(tiny_model, start_viewer, tmp_path):
    from gradio_client import Client, handle_file

    big = tmp_path / "big.png"
    cv2.imwrite(str(big), np.random.default_rng(0).integers(0, 255, (400, 400), dtype=np.uint8))
    assert big.stat().st_size > 100_000
    url = start_viewer(Segmenter(tiny_model, provider="cpu"), max_file_size=100_000)
    with pytest.raises(Exception, match="exceeds the maximum file size of 100000 bytes"):  # the client checks first
        Client(url, verbose=False).predict(handle_file(str(big)), CLICK, api_name="/segment")
    with big.open("rb") as fh:  # and the server refuses what a client sends regardless
        response = httpx.post(f"{url}gradio_api/upload", files={"files": ("big.png", fh, "image/png")})
    assert response.status_code == 413 and "maximum allowed size" in response.text


@pytest.mark.slow
def test_a_crash_in_one_request_is_logged_and_the_server_goes_on(
    faulty_segmenter, start_viewer, scan, tmp_path, caplog
):
    from gradio_client import Client, handle_file

    broken = faulty_segmenter()
    store = FeedbackStore.open(tmp_path / "fb.db")
    client = Client(start_viewer(broken, build={"store": store}, auth=[("ann", "pw")]), auth=("ann", "pw"))
    broken.fail = True
    review = dict(agree=True, outline_rating=3, accepted=False)
    with caplog.at_level(logging.ERROR, logger="liverclick.webapp"):
        for endpoint, kwargs in (("/segment", {}), ("/feedback", review)):
            with pytest.raises(Exception, match="something went wrong on the server") as err:
                client.predict(handle_file(scan), CLICK, **kwargs, api_name=endpoint)
            assert "a bug deep" not in str(err.value)  # details stay in the server's log
    assert "a bug deep in the model code" in caplog.text and "/feedback failed" in caplog.text
    broken.fail = False
    assert client.predict(handle_file(scan), CLICK, **review, api_name="/feedback")["id"] == 1
    store.close()  # the database goes away under the server
    with pytest.raises(Exception, match="feedback database cannot be reached right now, so nothing was saved"):
        client.predict(handle_file(scan), CLICK, **review, api_name="/feedback")
    _, result = client.predict(handle_file(scan), CLICK, api_name="/segment")
    assert result["area_px"] > 0


@pytest.mark.slow
def test_feedback_endpoint_needs_a_login_and_a_store_and_predicts_itself(tiny_model, start_viewer, scan, tmp_path):
    from gradio_client import Client, handle_file

    segmenter = Segmenter(tiny_model, provider="cpu")
    review = dict(agree=False, corrected_class="malignant", outline_rating=4, accepted=True, comment="edge ok")
    store = FeedbackStore.open(tmp_path / "fb.db")
    open_demo = Client(start_viewer(segmenter, build={"store": store}), verbose=False)  # no logins
    with pytest.raises(Exception, match="feedback needs a login"):
        open_demo.predict(handle_file(scan), CLICK, **review, api_name="/feedback")
    no_store = Client(start_viewer(segmenter, auth=[("ann", "pw")]), auth=("ann", "pw"), verbose=False)
    with pytest.raises(Exception, match="keeps no feedback: it was started without --feedback-db"):
        no_store.predict(handle_file(scan), CLICK, **review, api_name="/feedback")
    assert store.count() == 0

    url = start_viewer(segmenter, build={"store": store}, auth=[("ann", "pw"), ("bob", "pw2")])
    with pytest.raises(Exception, match="(?i)credentials|login"):
        Client(url, verbose=False)  # the whole app is behind the login
    client = Client(url, auth=("bob", "pw2"), verbose=False)
    prompt = json.dumps({"clicks": [{"x": 140, "y": 60, "positive": True}, {"x": 165, "y": 60, "positive": False}]})
    mask_file, answer = client.predict(handle_file(scan), prompt, api_name="/segment")
    if answer["predicted_class"] == "malignant":
        review = {**review, "corrected_class": "benign"}
    saved = client.predict(handle_file(scan), prompt, **review, api_name="/feedback")
    assert saved["id"] == 1 and saved["class_probs"] == pytest.approx(answer["class_probs"])
    (record,) = store.iter_records()
    assert record.reviewer == "bob" and record.prompt.to_dict() == json.loads(prompt)
    assert np.array_equal(record.mask, cv2.imread(mask_file, cv2.IMREAD_GRAYSCALE) > 0)  # the server's own outline
    assert record.model_name == "tiny-test" and record.comment == "edge ok" and record.accepted
    assert record.image is None  # no --store-images: the pixels' hash only

    # A retry with the request id is acknowledged with the first id; the same id with other content is refused.
    first = client.predict(handle_file(scan), prompt, **review, request_id="r-1", api_name="/feedback")["id"]
    again = client.predict(handle_file(scan), prompt, **review, request_id="r-1", api_name="/feedback")["id"]
    assert first == again == 2
    for other_prompt, other_review in ((CLICK, review), (prompt, {**review, "comment": "on second thoughts"})):
        with pytest.raises(Exception, match="conflict: request id r-1 was already used"):
            client.predict(handle_file(scan), other_prompt, **other_review, request_id="r-1", api_name="/feedback")
    assert store.count() == 2
