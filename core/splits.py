"""The paper's split: per class, sort by lesion area into 10 equal groups and draw test images from
each, so that every size is represented; images of one group (patient) never cross sets.

Works on whole groups: a group's class is its lesions' label (groups that mix labels must be
removed first) and its size is its lesions' mean area. Deterministic from the seed. Training's adapters
and the feedback export both split their manifests here.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

DEFAULT_FRACTIONS = {"test": 0.2, "val": 0.15}


def stratified_group_split(
    groups: dict[str, tuple[str, float]], fractions: dict[str, float], seed: int = 0, bins: int = 10
) -> dict[str, str]:
    """``groups``: group id -> (label, lesion area). ``fractions``: e.g. {"test": 0.15, "val": 0.1};
    the rest is "train". Returns group id -> split name."""
    rng = np.random.default_rng(seed)
    by_label: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for gid, (label, area) in sorted(groups.items()):
        by_label[label].append((area, gid))
    out: dict[str, str] = {}
    for label in sorted(by_label):
        ordered = [gid for _, gid in sorted(by_label[label])]
        for chunk in np.array_split(np.array(ordered, dtype=object), min(bins, len(ordered))):
            chunk = list(rng.permutation(chunk))
            start = 0
            for name, frac in fractions.items():
                k = _count(len(chunk), frac, rng)
                for gid in chunk[start : start + k]:
                    out[gid] = name
                start += k
            for gid in chunk[start:]:
                out[gid] = "train"
    return out


def assign_splits(rows: list[dict], fractions: dict[str, float], seed: int) -> list[dict]:
    """Set each manifest row's ``split`` by the paper's protocol over groups (label, mean lesion area)."""
    areas: dict[str, list[float]] = defaultdict(list)
    labels: dict[str, str] = {}
    for r in rows:
        areas[r["group"]].append(float(r["area_px"]))
        labels[r["group"]] = r["label"]
    groups = {g: (labels[g], float(np.mean(a))) for g, a in areas.items()}
    split = stratified_group_split(groups, fractions, seed)
    return [{**r, "split": split[r["group"]]} for r in rows]


def _count(n: int, frac: float, rng: np.random.Generator) -> int:
    """round(n * frac) with the fractional part decided at random, so small bins are not always 0."""
    exact = n * frac
    return min(n, int(exact) + int(rng.random() < exact - int(exact)))
