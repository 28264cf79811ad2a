"""NoC (RITM protocol, beyond the paper): from the first one-click input, each further click where the
error is largest, until a Jaccard threshold is reached or ``NOC_MAX_CLICKS``; per image and summarised."""

from __future__ import annotations

import numpy as np

from core.metrics import jaccard
from core.prompt import Prompt
from core.runtime import Predictor

from ..clicks import corrective_click
from . import stats
from .summary import json_ci

NOC_THRESHOLDS = (0.85, 0.90)
NOC_MAX_CLICKS = 20
K_CLICKS = 5


def click_sequence(predictor: Predictor, prepared, ref: np.ndarray, first: Prompt) -> list[float]:
    """Jaccard after each click, from ``first`` adding RITM corrective clicks.

    Runs until the highest NoC threshold is reached (and at least ``K_CLICKS`` clicks) or
    ``NOC_MAX_CLICKS``; a perfect mask (no error left) ends it early.
    """
    prompt, jis = first, []
    while True:
        pred = predictor.predict(prepared, prompt)
        jis.append(jaccard(pred.mask, ref))
        if len(jis) >= NOC_MAX_CLICKS or (jis[-1] >= max(NOC_THRESHOLDS) and len(jis) >= K_CLICKS):
            return jis
        click = corrective_click(pred.mask, ref)
        if click is None:
            return jis
        prompt = prompt.add_click(click.x, click.y, click.positive)


def clicks_to_reach(jis: list[float], threshold: float) -> tuple[int, bool]:
    """(clicks needed to reach ``threshold``, reached): NOC_MAX_CLICKS when never reached."""
    for k, ji in enumerate(jis, start=1):
        if ji >= threshold:
            return k, True
    return NOC_MAX_CLICKS, False


def ji_after(jis: list[float], k: int) -> float:
    """Jaccard after k clicks; a sequence that ended early (perfect mask) keeps its last value."""
    return jis[min(k, len(jis)) - 1]


def noc_record(predictor: Predictor, prepared, ref: np.ndarray, first: Prompt) -> dict:
    """One image's NoC record: the Jaccard after each click and the clicks needed for each threshold."""
    jis = click_sequence(predictor, prepared, ref, first)
    return {
        "ji_after_click": jis,
        **{f"noc{round(t * 100)}": clicks_to_reach(jis, t)[0] for t in NOC_THRESHOLDS},
        **{f"noc{round(t * 100)}_reached": clicks_to_reach(jis, t)[1] for t in NOC_THRESHOLDS},
    }


def noc_summary(records: list[dict], n_boot: int, seed: int) -> dict:
    out: dict = {"start": "the first one-click input", "max_clicks": NOC_MAX_CLICKS}
    for t in NOC_THRESHOLDS:
        name = f"noc{round(t * 100)}"
        v = np.array([r["noc"][name] for r in records], dtype=np.float64)
        out[name] = float(v.mean())
        out[f"{name}_ci95"] = json_ci(stats.bootstrap_ci(lambda idx, v=v: v[idx].mean(), len(v), n_boot, seed))
        out[f"{name}_failed"] = float(np.mean([not r["noc"][f"{name}_reached"] for r in records]))
    out["mean_ji_after_k"] = [
        float(np.mean([ji_after(r["noc"]["ji_after_click"], k) for r in records])) for k in range(1, K_CLICKS + 1)
    ]
    return out
