"""Every word the viewer's page says: the header, the notice, the guidance line, the result's rows, the review line,
the operating points' meaning, the model panel, the review progress and the messages a user may read.

One module, so that the page's wording is read, reviewed and changed in one place; the other modules pass it
values (a tab, a prediction, a model) and lay out what comes back.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from core.serialize import operating_point_name

if TYPE_CHECKING:
    from core.imageio import UltrasoundImage
    from core.measure import Measurements
    from core.runtime import Prediction, Predictor

NOTICE = "Research tool, not for diagnosis."
TITLE = "# liverclick"
INTRO = "Click on a lesion in an ultrasound image, or draw a box around it, to see it outlined and classified."

# --- messages ----------------------------------------------------------------------------------------------
NO_IMAGE = "upload an image first, then click on the lesion"
SINGLE_FRAME = "this image has a single frame"
LOGIN_NEEDED = "feedback needs a login: the server must be started with --auth or --auth-file, and you signed in"
INTERNAL_ERROR = "Something went wrong on the server (the details are in its log). The image and its outline are kept."
EXPIRED = "this page's tab has expired or the server restarted: reload the page and open the image again"
NOT_YOURS = "this page's tab belongs to another login"
NOT_UNDERSTOOD = "the viewer sent a request this server does not understand; reload the page"
IMAGE_CHANGED = "the image changed before these inputs reached the server, so they were dropped; click again"
NO_STORE = "this server keeps no feedback: it was started without --feedback-db"
STORE_DOWN = "the feedback database cannot be reached right now, so nothing was saved; please try again"
NO_OUTLINE = "Outline a lesion to review it."
NO_DOWNLOAD = "outline a lesion first: a download is of the outline shown"
NO_CASE_NUMBER = "give the case's number"
NO_SESSION_CHOSEN = "choose a review session first"
NO_REVIEW_SESSION = "No review session names you."
ORGANISERS_ONLY = "The organiser's view is for logins marked as organisers."
# What the canvas says without the server: read from the template's data attributes (webapp.canvas).
CANVAS = {
    "empty": "Upload an ultrasound image, or pick an example.",
    "working": "working…",
    "no-answer": "The server did not answer: the connection was lost or you were signed out. Reload the page.",
}


# --- the viewer --------------------------------------------------------------------------------------------
def header(predictor: Predictor) -> str:
    """The notice line under the title."""
    return f"**{NOTICE}** Model: {predictor.name} {predictor.version}."


def signed_in_line(username: str | None) -> str:
    return f"Reviewing as **{username}**." if username else f"Not signed in: {LOGIN_NEEDED}."


def guidance(*, image: bool, inputs: int, outlined: bool) -> str:
    """One line telling the user what the viewer is waiting for (``inputs``: how many are in force)."""
    if not image:
        return "Upload an ultrasound image (PNG, JPEG, BMP, TIFF or DICOM)."
    if not inputs:
        return (
            "Click on the lesion, or drag a box around it. Shift-click or right-click marks background; "
            "the wheel zooms, a middle-button or space drag pans; z undoes, Esc clears."
        )
    if not outlined:
        return "Background points only so far: click on the lesion, or draw a box, to outline it."
    n = inputs
    return (
        f"Outlined from {n} input{'s' if n > 1 else ''}. Add lesion or background points to refine it; "
        "Undo (z) takes back the last one."
    )


def review_line(*, outlined: bool, feedback_id: int | None) -> str:
    """Whether the outline shown has been reviewed (saved as feedback)."""
    if feedback_id is not None:
        return f"Feedback saved as #{feedback_id}. Change the outline (a click, undo) to review it again."
    if not outlined:
        return NO_OUTLINE
    return "Feedback on this outline: not saved yet."


def lesion_rows(m: Measurements, p: Prediction, image: UltrasoundImage, provider: str) -> list[tuple[str, str]]:
    """Area, longest diameter (mm when the spacing is known), class, image and timing, as (label, value) rows."""
    area, diameter = f"{m.area_px:,} px²", f"{m.diameter_px:.1f} px"
    if m.area_mm2 is not None:
        area += f" · {m.area_mm2:.1f} mm²"
        diameter += f" · {m.diameter_mm:.1f} mm"
    spacing = image.pixel_spacing_mm
    scale = f"{spacing[1]:.3g} x {spacing[0]:.3g} mm per pixel" if spacing else "pixel spacing unknown: no mm"
    total, network = (_duration(p.timings_ms.get(k, 0)) for k in ("total", "inference"))
    return [
        ("Area", area),
        ("Longest diameter", diameter),
        ("Most likely class", f"{p.predicted_class} ({p.class_probs[p.predicted_class]:.0%})"),
        ("Image", f"{image.description}; {image.width} x {image.height} px; {scale}"),
        ("Time", f"{total} for this input ({network} network) on {provider}"),
    ]


def malignant_label(calibrated: bool) -> str:
    return f"Malignant ({'calibrated probability' if calibrated else 'model output, not calibrated'})"


def class_label(name: str, malignant: bool) -> str:
    return f"{name} (malignant)" if malignant else name


CLASSES_HEADING = "Class probabilities"


def operating_point_meaning(name: str) -> str:
    """What an operating point is, for a reader who might take "90%-sensitivity" for a chance of cancer."""
    kind, _, value = name.partition("_")
    if kind == "sensitivity" and value.isdigit():
        return (
            f"The {operating_point_name(name)} was chosen on validation images so that {value}% of the malignant "
            f"lesions there scored at or above it. Being above it is not a {value}% chance of cancer."
        )
    return f"The {operating_point_name(name)} was chosen on validation images."


def _duration(value: float) -> str:
    """Milliseconds as the page shows them: '7.4 ms', '26 ms'."""
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


# --- the model panel ---------------------------------------------------------------------------------------
def model_card_markdown(predictor: Predictor) -> str:
    """The model panel: name, version, provider, classes and every entry of the model card."""
    spec, card = predictor.spec, predictor.card
    classes = ", ".join(class_label(c, c in spec.malignant_classes) for c in spec.class_names)
    lines = [
        f"**{predictor.name}**, version {predictor.version}, running on {predictor.provider}.",
        "",
        f"**{NOTICE}**",
        "",
        f"- **Classes**: {classes}",
        f"- **Input**: {spec.input_size} x {spec.input_size}, "
        + ("zoomed in around the prompt" if spec.zoom_in else "the whole image"),
    ]
    for key, value in card.items():
        if key not in ("name", "version"):
            lines += _card_entry(key.replace("_", " ").capitalize(), value)
    return "\n".join(lines)


def _card_entry(title: str, value, depth: int = 0) -> list[str]:
    pad = "  " * depth
    if isinstance(value, dict):
        return [f"{pad}- **{title}**:"] + [line for k, v in value.items() for line in _card_entry(str(k), v, depth + 1)]
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return [f"{pad}- **{title}**:"] + [f"{pad}  - {json.dumps(v)}" for v in value]
    if isinstance(value, list):
        value = ", ".join(_plain(v) for v in value)
    return [f"{pad}- **{title}**: {_plain(value)}"]


def _plain(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


# --- review sessions ---------------------------------------------------------------------------------------
def progress_line(*, size: int, reviewed: int, shown: int | None, upcoming: int | None) -> str:
    """'Case k of N · r reviewed · next: case m' (positions from 0; ``shown``: the case open, if of this session)."""
    parts = [f"**Case {shown + 1} of {size}**" if shown is not None else f"{size} cases", f"{reviewed} reviewed"]
    parts.append(f"next: case {upcoming + 1}" if upcoming is not None else "all reviewed")
    return " · ".join(parts)
