"""What the viewer reads from a model's card and contract: the images it is for, which examples fit it, whether its
malignancy probability is calibrated, and the card as a summary a clinician reads (the words: webapp.text).

Everything comes from the model file (``Predictor.card``, ``Predictor.spec``), never from the model's name or
version, so that a model trained on other data says so by itself.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from . import text

if TYPE_CHECKING:
    from core.runtime import Predictor

# The paper's liver classes: a model with any of them is a liver model, and the liver phantoms fit it.
LIVER_CLASSES = frozenset({"cyst", "hemangioma", "metastasis", "hcc"})
ORGANS = ("breast", "liver", "thyroid", "kidney", "prostate")  # read from the card's words about its data
PHANTOM_PREFIX = "phantom_"  # webapp/examples/phantom_*.png: synthetic liver lesions
# A probability is called calibrated when its expected calibration error on images the calibration was not
# fitted on is at most this: observed rates within 5 percentage points of the probabilities, on average.
ECE_LIMIT = 0.05


def has_liver_classes(predictor: Predictor) -> bool:
    return bool(LIVER_CLASSES & {c.lower() for c in predictor.spec.class_names})


def domain(predictor: Predictor) -> str:
    """The images the model is for, e.g. "breast ultrasound": the card's ``domain``, else "liver ultrasound" for a
    model with liver classes, else the first organ its training data (or intended use) names."""
    card = predictor.card
    if isinstance(card.get("domain"), str) and card["domain"]:
        return card["domain"]
    if has_liver_classes(predictor):
        return "liver ultrasound"
    for key in ("training_data", "intended_use"):
        words = str(card.get(key, "")).lower()
        found = [(words.find(organ), organ) for organ in ORGANS if organ in words]
        if found:
            return f"{min(found)[1]} ultrasound"
    return "ultrasound"


def shown_examples(predictor: Predictor, folder: Path) -> list[Path]:
    """The example images that fit the model: the synthetic liver phantoms only for a model with liver classes."""
    images = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if has_liver_classes(predictor):
        return images
    return [p for p in images if not p.name.startswith(PHANTOM_PREFIX)]


def held_out_ece(card: dict) -> float | None:
    """The largest expected calibration error the card reports for the malignancy probability on its evaluation
    split (``metrics.benign_malignant.calibration``: ``ece``, ``per_input.ece``, ``per_image.ece``), or None when
    it reports none, or only on the split the calibration was fitted on."""
    metrics = card.get("metrics") or {}
    check = (metrics.get("benign_malignant") or {}).get("calibration") or {}
    values = [check.get("ece")] + [(check.get(level) or {}).get("ece") for level in ("per_input", "per_image")]
    values = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    fitted = ((card.get("calibration") or {}).get("fitted_on") or {}).get("split")
    if not values or (fitted and f"[{fitted}]" in str(metrics.get("split", ""))):
        return None
    return max(values)


def calibrated(card: dict) -> bool:
    """Whether the card stands behind calling the malignancy output a probability: a held-out calibration check
    (:func:`held_out_ece`) within ECE_LIMIT."""
    ece = held_out_ece(card)
    return ece is not None and ece <= ECE_LIMIT


def summary_markdown(predictor: Predictor) -> str:
    """The card as a clinician reads it: what the model is, what it reaches (95% CIs), what it is not for."""
    card, spec = predictor.card, predictor.spec
    metrics = card.get("metrics") or {}
    return text.card_summary(
        name=predictor.name,
        version=predictor.version,
        domain=domain(predictor),
        classes=list(spec.class_names),
        malignant=list(spec.malignant_classes),
        training_data=card.get("training_data"),
        figures=_figures(metrics),
        split=metrics.get("split"),
        calibration=_calibration(card),
        points=[(name, t, _rates(card, name)) for name, t in spec.operating_points],
        not_for=card.get("intended_use") or card.get("notice"),
    )


def raw_json(predictor: Predictor) -> str:
    """The card and the input contract as stored in the model file."""
    return json.dumps({"model_card": predictor.card, "input_spec": json.loads(predictor.spec.to_json())}, indent=2)


def _figures(metrics: dict) -> list[tuple[str, str, float, list | None]]:
    """(what, format, value, 95% CI) for each figure of the card that the summary names (text.CARD_FIGURES)."""
    out = []
    for path, label, kind in text.CARD_FIGURES:
        node: object = metrics
        for part in path[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        key = path[-1]
        if isinstance(node, dict) and isinstance(node.get(key), dict):  # {"mean", "ci95"}
            value, ci = node[key].get("mean"), node[key].get("ci95")
        else:
            value = node.get(key) if isinstance(node, dict) else None
            ci = node.get(f"{key}_ci95") if isinstance(node, dict) else None
        if isinstance(value, (int, float)):
            out.append((label, kind, value, ci))
    return out


def _calibration(card: dict) -> dict:
    fitted = (card.get("calibration") or {}).get("fitted_on") or {}
    return {"calibrated": calibrated(card), "ece": held_out_ece(card), "fitted_on": fitted, "limit": ECE_LIMIT}


def _rates(card: dict, name: str) -> dict:
    return ((card.get("calibration") or {}).get("rates_at_points") or {}).get(name) or {}
