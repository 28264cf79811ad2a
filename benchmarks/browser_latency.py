"""From the user's action to the outline on screen, in a real browser: ``liverclick serve`` in its own process,
headless Chromium on the same machine.

The server runs as users run it (``python -m core.cli serve``, so the tree on ``PYTHONPATH`` is the one measured),
in a process of its own: the benchmark's own Python (Playwright's client) shares no interpreter with it. Uploads
an image and, for each of ``--rounds`` rounds, makes the three actions a user makes on a lesion: a first
lesion click (``first_click``), a corrective click after it (``correction``: a lesion or background click, as the
lesion's prompts say) and, after clearing, a dragged box (``box``: press, drag, release). Each is timed in the
page, from the input event (the release of the mouse button) to the animation frame after the canvas has drawn
the answer's outline. Prompts are those of ``liverclick benchmark`` (``IMAGE.json`` beside the image, or
``--box``), jittered by a few pixels. Prints the median and p95 per action, with the model, provider and
machine, and beside them what the server's predict took for the same action (the figure the page's result shows
in its "Time" row) and the difference, action by action: what the browser and the web server added, under the
same load; ``--screenshot`` saves the page after a box.

    python benchmarks/browser_latency.py --model default --image webapp/examples/busi_malignant_055.png --json

Beside it, ``liverclick benchmark --model default --provider cpu --image IMAGE`` times the runtime alone on the same
image's prompts: the difference is what the browser and the web server add.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from core.benchmark import jittered, lesion_prompts, machine_description
from core.imageio import load_image
from core.runtime import Segmenter

ROOT = "#canvas .lc-viewer"
STATE = f"() => document.querySelector('{ROOT}').__liverclick"
ACTIONS = ("first_click", "correction", "box")


class View:
    """The viewer's canvas in a page: image pixels to page positions, and the wait for an answer on screen."""

    def __init__(self, page) -> None:
        self.page = page

    def state(self) -> dict:
        return self.page.evaluate(
            f"() => {{ const s = ({STATE})(); return {{ scale: s.scale, ox: s.ox, oy: s.oy, drawn: s.drawn,"
            " timings: s.timings, outline: s.shown.outline.length, rows: s.shown.result && s.shown.result.rows }; }"
        )

    def at(self, x: float, y: float) -> tuple[float, float]:
        box, st = self.page.locator(f"{ROOT} canvas").bounding_box(), self.state()
        return box["x"] + st["ox"] + (x + 0.5) * st["scale"], box["y"] + st["oy"] + (y + 0.5) * st["scale"]

    def answered(self, act, *args) -> dict:
        """Do ``act(*args)``, wait until its answer is drawn; the page's timing of it (``ms``, ``kind``) and the
        server's predict time the answer shows (``predict_ms``, None without an outline)."""
        drawn = self.state()["drawn"]
        act(*args)
        self.page.wait_for_function(
            f"n => {{ const s = ({STATE})(); return s.drawn > n && !s.pending.length && !s.inflight.length; }}",
            arg=drawn,
            timeout=60_000,
        )
        st = self.state()
        if st["drawn"] != drawn + 1:
            raise RuntimeError("one action gave more than one answer")
        shown = dict(st["rows"] or [])
        return {**st["timings"][-1], "predict_ms": float(shown["Time"].split(" ms")[0]) if "Time" in shown else None}

    def click(self, point) -> None:
        """A click on a prompt's point: left for a lesion point, right for background."""
        self.page.mouse.click(*self.at(point.x, point.y), button="left" if point.positive else "right")

    def drag(self, box) -> None:
        """Press at a box's first corner, drag to the opposite one, release."""
        x0, y0, x1, y1 = box.to_list()
        self.page.mouse.move(*self.at(x0, y0))
        self.page.mouse.down()
        self.page.mouse.move(*self.at(x1, y1), steps=5)
        self.page.mouse.up()

    def clear(self) -> None:
        self.answered(self.page.keyboard.press, "Escape")


def measure(view: View, prompts: dict, *, width: int, height: int, rounds: int, screenshot: Path | None) -> dict:
    """{action: [(ms on screen, ms of the server's predict)]} over ``rounds`` rounds (one warm-up round first, not
    counted)."""
    page, rng = view.page, np.random.default_rng(0)
    times: dict[str, list[tuple[float, float]]] = {a: [] for a in ACTIONS}
    for r in range(rounds + 1):
        kinds = jittered(prompts, rng, width, height)
        got = {
            "first_click": view.answered(view.click, kinds["click"][0].inputs[0]),
            "correction": view.answered(view.click, kinds["correction"][0].inputs[-1]),
        }
        view.clear()
        got["box"] = view.answered(view.drag, kinds["box"][0].box)
        if not view.state()["outline"]:
            raise RuntimeError("the box gave no outline: check the lesion's prompts")
        if r == 0 and screenshot:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.mouse.move(1, 1)  # no crosshair in the picture
            page.screenshot(path=str(screenshot), full_page=True)
        view.clear()
        for action, timing in got.items():
            expected = "box" if action == "box" else "click"
            if timing["kind"] != expected:
                raise RuntimeError(f"{action}: the page timed a {timing['kind']!r}")
            if r:
                times[action].append((timing["ms"], timing["predict_ms"]))
    return times


@contextmanager
def served(model: str, timeout_s: float = 120.0):
    """The URL of ``liverclick serve --model MODEL --provider cpu`` on a free loopback port, in its own process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "core.cli", "serve", "--model", model, "--provider", "cpu", "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(f"{url}config", timeout=5).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"liverclick serve did not start: {server.stderr.read()[-2000:]}") from None
                time.sleep(0.25)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--image", type=Path, required=True)
    ap.add_argument("--box", type=int, nargs=4, default=None, metavar=("X0", "Y0", "X1", "Y1"), help="its lesion")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--screenshot", type=Path, default=None)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--json", action="store_true", help="end with one JSON line")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    prompts = lesion_prompts(args.image, args.box)
    image = load_image(args.image)
    segmenter = Segmenter(args.model, provider="cpu")  # its name, version and provider, for the report
    with served(args.model) as url, sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.locator("#upload input[type=file]").set_input_files(str(args.image))
        page.wait_for_function(f"() => {{ const s = ({STATE})(); return !!s.picture && !!s.key; }}")
        times = measure(
            View(page), prompts, width=image.width, height=image.height, rounds=args.rounds, screenshot=args.screenshot
        )
        browser.close()
    result = {
        "model": segmenter.name,
        "version": segmenter.version,
        "provider": segmenter.provider,
        "image": f"{args.image.name} ({image.width}x{image.height})",
        "machine": machine_description(),
        "load_average": os.getloadavg()[0],
        "browser": "headless Chromium, same machine; liverclick serve in its own process",
        "rounds": args.rounds,
    }
    for action, pairs in times.items():
        ms, predict = (np.array(v, float) for v in zip(*pairs, strict=True))
        result[action] = {
            "median_ms": float(np.median(ms)),
            "p95_ms": float(np.percentile(ms, 95)),
            "server_predict_median_ms": float(np.median(predict)),
            "added_median_ms": float(np.median(ms - predict)),
            "added_p95_ms": float(np.percentile(ms - predict, 95)),
            "n": len(ms),
        }
    print(
        f"{result['model']} {result['version']} on {result['provider']} ({result['machine']}, load average "
        f"{result['load_average']:.1f}), {result['image']}, action to outline on screen in {result['browser']}:"
    )
    for action in ACTIONS:
        t = result[action]
        print(
            f"  {action:12s} median {t['median_ms']:.0f} ms, p95 {t['p95_ms']:.0f} ms ({t['n']} times); the server's "
            f"predict {t['server_predict_median_ms']:.0f} ms, added above it: median {t['added_median_ms']:.0f} ms, "
            f"p95 {t['added_p95_ms']:.0f} ms"
        )
    if args.screenshot:
        print(f"screenshot after a box: {args.screenshot}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
