"""NoC and the Jaccard after k clicks (beyond the paper), with RITM's clicker, the field's protocol.

From an empty outline, each click is placed by :func:`training.clicks.next_click` (the deepest point of
the larger error, the first one therefore at the lesion's deepest point) and the model's pass is fed the
outline before it, as a user corrects the model in the viewer. Up to ``NOC_MAX_CLICKS`` clicks; NoC@t is
the first click reaching Jaccard t, or ``NOC_MAX_CLICKS`` when none does.
"""

from __future__ import annotations

import numpy as np

from core.metrics import jaccard
from core.prompt import Prompt
from core.runtime import Predictor

from ..clicks import next_click
from . import stats
from .summary import json_ci

NOC_THRESHOLDS = (0.85, 0.90)
NOC_MAX_CLICKS = 20
CLICKER = (
    "RITM: each click at the deepest point of the larger error (missed lesion or false outline; "
    "ties: false outline, a background click)"
)


def click_sequence(predictor: Predictor, prepared, ref: np.ndarray, max_clicks: int = NOC_MAX_CLICKS) -> list[float]:
    """Jaccard after each of up to ``max_clicks`` clicks of RITM's clicker, each pass fed the previous outline;
    a perfect outline (nothing left to correct) ends it early."""
    prompt, shown, jis = Prompt(), np.zeros(ref.shape, bool), []
    clicked = np.zeros(ref.shape, bool)
    while len(jis) < max_clicks:
        click = next_click(shown, ref, clicked)
        if click is None:
            break
        clicked[int(click.y), int(click.x)] = True
        prompt = prompt.add_click(click.x, click.y, click.positive)
        shown = predictor.predict(prepared, prompt, shown if len(jis) else None).mask
        jis.append(jaccard(shown, ref))
    return jis


def clicks_to_reach(jis: list[float], threshold: float) -> tuple[int, bool]:
    """(clicks needed to reach ``threshold``, reached): NOC_MAX_CLICKS when never reached."""
    for k, ji in enumerate(jis, start=1):
        if ji >= threshold:
            return k, True
    return NOC_MAX_CLICKS, False


def ji_after(jis: list[float], k: int) -> float:
    """Jaccard after k clicks; a sequence that ended early (perfect outline) keeps its last value."""
    return jis[min(k, len(jis)) - 1]


def noc_record(predictor: Predictor, prepared, ref: np.ndarray, max_clicks: int = NOC_MAX_CLICKS) -> dict:
    """One image's record: the Jaccard after each click and the clicks needed for each threshold."""
    jis = click_sequence(predictor, prepared, ref, max_clicks)
    return {
        "ji_after_click": jis,
        **{f"noc{round(t * 100)}": clicks_to_reach(jis, t)[0] for t in NOC_THRESHOLDS},
        **{f"noc{round(t * 100)}_reached": clicks_to_reach(jis, t)[1] for t in NOC_THRESHOLDS},
    }


def noc_summary(records: list[dict], n_boot: int, seed: int) -> dict:
    """Mean NoC@85/90 with CIs and the share never reaching them; the mean Jaccard after k = 1..20 clicks with CIs."""
    out: dict = {"clicker": CLICKER, "max_clicks": NOC_MAX_CLICKS}
    for t in NOC_THRESHOLDS:
        name = f"noc{round(t * 100)}"
        v = np.array([r["noc"][name] for r in records], dtype=np.float64)
        out[name] = float(v.mean())
        out[f"{name}_ci95"] = json_ci(stats.bootstrap_ci(lambda idx, v=v: v[idx].mean(), len(v), n_boot, seed))
        out[f"{name}_failed"] = float(np.mean([not r["noc"][f"{name}_reached"] for r in records]))
    after = np.array([[ji_after(r["noc"]["ji_after_click"], k) for k in range(1, NOC_MAX_CLICKS + 1)] for r in records])
    out["mean_ji_after_k"] = after.mean(axis=0).tolist()
    out["mean_ji_after_k_ci95"] = [
        json_ci(c) for c in stats.bootstrap_ci(lambda idx: after[idx].mean(axis=0), len(after), n_boot, seed)
    ]
    return out
