"""Click-to-overlay time in a real browser: the viewer on a model, driven by headless Chromium.

Uploads an image, draws a box (two corner clicks), then adds lesion clicks and times each one from the
click to the updated view having loaded; prints the median and p95 and saves a screenshot of the page
after the box prompt.

    python benchmarks/browser_latency.py --model default --image webapp/examples/busi_malignant_055.png \
        --box 150 100 330 260 --clicks 10 --screenshot docs/images/viewer_box.png
"""

from __future__ import annotations

import argparse
import socket
import statistics
import time
from pathlib import Path

from core.benchmark import machine_description
from core.imageio import load_image
from core.runtime import Segmenter
from webapp.app import build_demo, launch

LOADED = "i => !!i && i.complete && i.naturalWidth > 0"
UPDATED = f"old => {{ const i = document.querySelector('#view img'); return ({LOADED})(i) && i.src !== old; }}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--image", type=Path, required=True)
    ap.add_argument("--box", type=int, nargs=4, required=True, metavar=("X0", "Y0", "X1", "Y1"))
    ap.add_argument("--clicks", type=int, default=10)
    ap.add_argument("--screenshot", type=Path, default=None)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args()

    from playwright.sync_api import sync_playwright

    segmenter = Segmenter(args.model, provider="cpu")
    width = load_image(args.image).width
    demo = build_demo(segmenter)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, url, _ = launch(demo, port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(url)
            page.locator("#upload input[type=file]").set_input_files(str(args.image))
            view = page.locator("#view img")
            view.wait_for()
            page.wait_for_function(f"() => ({LOADED})(document.querySelector('#view img'))")

            def click(x: float, y: float) -> float:
                """Click image pixel (x, y); seconds until the updated view has loaded."""
                box = view.bounding_box()
                nat_w, nat_h = view.evaluate("i => [i.naturalWidth, i.naturalHeight]")
                r = min(box["width"] / nat_w, box["height"] / nat_h, 1)
                s = nat_w / width  # the view may show the image enlarged or reduced
                old = view.get_attribute("src")
                start = time.perf_counter()
                page.mouse.click(
                    box["x"] + (box["width"] - nat_w * r) / 2 + (x + 0.5) * s * r,
                    box["y"] + (box["height"] - nat_h * r) / 2 + (y + 0.5) * s * r,
                )
                page.wait_for_function(UPDATED, arg=old, timeout=30_000)
                return time.perf_counter() - start

            page.get_by_label("Box: two corners").check()
            x0, y0, x1, y1 = args.box
            click(x0, y0)
            click(x1, y1)
            page.wait_for_timeout(300)
            if args.screenshot:
                args.screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.screenshot), full_page=True)
            page.get_by_label("Lesion point (+)").check()
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            times = [click(cx + (i % 5 - 2) * 3, cy + (i // 5 - 1) * 3) * 1000 for i in range(args.clicks)]
            browser.close()
    finally:
        demo.close()
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(
        f"{segmenter.name} {segmenter.version} ({segmenter.provider}, {machine_description()}): "
        f"click-to-overlay in Chromium over {len(times)} clicks: median {statistics.median(times):.0f} ms, "
        f"p95 {p95:.0f} ms, min {times[0]:.0f} ms, max {times[-1]:.0f} ms"
    )
    if args.screenshot:
        print(f"screenshot after the box prompt: {args.screenshot}")


if __name__ == "__main__":
    main()
