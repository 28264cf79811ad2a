"""Every word the viewer's page says: the header, the notice, the guidance line, the result's rows, the review line,
the operating points' meaning, the model panel, the review progress and the messages a user may read.

One module, so that the page's wording is read, reviewed and changed in one place; the other modules pass it
values (a tab, a prediction, a model) and lay out what comes back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.imageio import UltrasoundImage
    from core.measure import Measurements
    from core.runtime import Prediction, Predictor

NOTICE = "Research tool, not for diagnosis."
INTRO = "Click on a lesion in an ultrasound image, or draw a box around it, to see it outlined and classified."


def page_title(domain: str) -> str:
    """The browser tab's title: the images the model is for, and that it is for research."""
    return f"liverclick · {domain} lesions · research only"


def title(domain: str) -> str:
    return f"# liverclick: {domain} lesions\n{INTRO}"


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
NO_CASE_NUMBER = "give the case's number: a whole number from 1"
NO_SESSION_CHOSEN = "choose a review session first"
NO_REVIEW_SESSION = "No review session names you."
ORGANISERS_ONLY = "The organiser's view is for logins marked as organisers."
CASE_LEFT = (
    "Case {k} of review session {name!r} was left before its review was saved: it stays in your worklist "
    "(Next case or its number opens it again). Feedback on this image is saved as plain feedback, not as that case's."
)
# What the canvas says without the server: read from the template's data attributes (webapp.canvas).
CANVAS = {
    "empty": "Upload an ultrasound image, or pick an example.",
    "working": "working…",
    "no-answer": "The server did not answer: the connection was lost or you were signed out. Reload the page.",
}


# --- the viewer --------------------------------------------------------------------------------------------
def header(predictor: Predictor, domain: str) -> str:
    """The notice under the title: research only, and which images and classes the model is for."""
    spec = predictor.spec
    classes = " or ".join(spec.class_names) if len(spec.class_names) == 2 else ", ".join(spec.class_names)
    return (
        f"**{NOTICE}** Model: {predictor.name} {predictor.version}, for **{domain}** images: {classes}. "
        f"Its answers on other images mean nothing."
    )


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


def class_label(name: str, malignant: bool) -> str:
    return f"{name} (malignant)" if malignant and name.lower() != "malignant" else name


CLASSES_HEADING = "Class probabilities"
DETAILS = "What this means"


def malignancy_label(calibrated: bool) -> str:
    """What the malignancy output is called: a probability only when the model's card stands behind it
    (webapp.card.calibrated)."""
    return "Probability of malignancy" if calibrated else "Malignancy score (not a calibrated probability)"


def malignancy_bar(calibrated: bool) -> str:
    """The malignancy bar's short label (the sentence under it says the rest)."""
    return "Probability of malignancy" if calibrated else "Malignancy score"


def point_name(name: str) -> str:
    """``sensitivity_90`` -> "90%-sensitivity"; ``youden`` -> "Youden"."""
    kind, _, value = name.partition("_")
    return f"{value}%-sensitivity" if kind == "sensitivity" and value.isdigit() else kind.capitalize()


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def malignancy_sentence(p: float, points: list[tuple[str, float]], *, calibrated: bool) -> str:
    """One sentence: the malignancy output and where it falls against the operating points, lowest first."""
    head = f"{malignancy_label(calibrated)}: {p:.0%}"
    if not points:
        return f"{head}."
    ordered = sorted(points, key=lambda point: point[1])
    sides = []
    for side, names in (
        ("above", [point_name(n) for n, t in ordered if p >= t]),
        ("below", [point_name(n) for n, t in ordered if p < t]),
    ):
        if names:
            sides.append(f"{side} the {_and(names)} threshold{'s' if len(names) > 1 else ''}")
    return f"{head}, {' and '.join(sides)}."


def malignancy_details(p: float, points: list[tuple[str, float]], *, calibrated: bool, ece: float | None) -> list[str]:
    """The details behind the sentence, one line each: what each threshold is, the caveat where it applies, and
    what the number is."""
    lines = []
    for name, threshold in sorted(points, key=lambda point: point[1]):
        kind, _, value = name.partition("_")
        if kind == "sensitivity" and value.isdigit():
            meaning = f"{value}% of the malignant lesions in the validation images scored at or above it."
        elif kind == "youden":
            meaning = (
                "the score that best balanced finding malignant lesions against wrongly flagging benign ones on "
                "the validation images (Youden's index: sensitivity + specificity − 1 at its largest)."
            )
        else:
            meaning = "chosen on the validation images."
        lines.append(f"{point_name(name)} threshold ({threshold:.2f}): {meaning}")
    for name, threshold in sorted(points, key=lambda point: -point[1]):
        kind, _, value = name.partition("_")
        if kind == "sensitivity" and value.isdigit() and p >= threshold:  # the caveat, only where it applies
            lines.append(f"Being above the {value}%-sensitivity threshold is not a {value}% chance of cancer.")
    if calibrated:
        lines.append(f"Calibrated: on held-out test images its expected calibration error was {ece:.3f}.")
    elif ece is not None:
        lines.append(
            f"Not calibrated: on held-out test images this number was off from how often such lesions are malignant "
            f"by {ece:.3f} on average (expected calibration error), so read it as a ranking against the thresholds, "
            "not as a chance."
        )
    else:
        lines.append(
            "Not calibrated: the model's card shows no held-out check that this number matches how often such "
            "lesions are malignant, so read it as a ranking against the thresholds, not as a chance."
        )
    return lines


def _duration(value: float) -> str:
    """Milliseconds as the page shows them: '7.4 ms', '26 ms'."""
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


# --- the model panel
CARD_PANEL = "About the model"
CARD_RAW = "The model file's card and input contract (JSON)"
# The card's figures the summary names: (path under the card's metrics, what it is, how to show it).
CARD_FIGURES = (
    (("two_click_jaccard",), "Outline from a box: mean Jaccard index with the reference (0–1)", "num"),
    (("one_click_jaccard",), "Outline from one click: mean Jaccard index", "num"),
    (("noc", "noc85"), "Clicks needed to reach a Jaccard index of 0.85 (mean)", "clicks"),
    (("noc", "noc90"), "Clicks needed to reach 0.90 (mean)", "clicks"),
    (("benign_malignant", "auroc"), "Benign/malignant AUROC (0.5 is chance, 1 perfect)", "num"),
    (("benign_malignant", "sensitivity"), "Sensitivity at the Youden threshold", "pct"),
    (("benign_malignant", "specificity"), "Specificity at the Youden threshold", "pct"),
    (("benign_malignant", "calibration", "per_image", "ece"), "Calibration error (ECE) per image, 0 is perfect", "num"),
    (("benign_malignant", "calibration", "per_input", "ece"), "Calibration error (ECE) per prompt", "num"),
)
_FORMATS = {"num": "{:.3f}", "pct": "{:.0%}", "clicks": "{:.1f}"}


def card_summary(
    *,
    name: str,
    version: str,
    domain: str,
    classes: list[str],
    malignant: list[str],
    training_data: str | None,
    figures: list[tuple[str, str, float, list | None]],
    split: str | None,
    calibration: dict,
    points: list[tuple[str, float, dict]],
    not_for: str | None,
) -> str:
    """The model card as a clinician reads it (webapp.card.summary_markdown gathers the values)."""
    kinds = ", ".join(class_label(c, c in malignant) for c in classes)
    lines = [f"**{name} {version}** outlines and classifies lesions in **{domain}** images: {kinds}.", ""]
    lines += [f"**{NOTICE}** {not_for or ''}".rstrip(), ""]
    if training_data:
        lines += [f"**Trained on**: {training_data}.".replace("..", "."), ""]
    if figures:
        lines += [f"**What it reaches** on {split or 'its test images'}:", "", "| | Result | 95% CI |", "|---|---|---|"]
        for label, kind, value, ci in figures:
            fmt = _FORMATS[kind]
            interval = f"{fmt.format(ci[0])}–{fmt.format(ci[1])}" if isinstance(ci, list) and len(ci) == 2 else "–"
            lines.append(f"| {label} | {fmt.format(value)} | {interval} |")
        lines.append("")
    lines += [_calibration_words(calibration), ""]
    if points:
        lines += ["**Thresholds** (chosen on the validation images):", ""]
        lines += ["| Threshold | Score | Sensitivity on validation | Specificity on validation |", "|---|---|---|---|"]
        for point, threshold, rates in points:
            sens, spec = (f"{rates[k]:.0%}" if isinstance(rates.get(k), (int, float)) else "–" for k in RATES)
            lines.append(f"| {point_name(point)} | {threshold:.2f} | {sens} | {spec} |")
    return "\n".join(lines)


RATES = ("sensitivity", "specificity")


def _calibration_words(calibration: dict) -> str:
    fitted = calibration.get("fitted_on") or {}
    where = f" on the {fitted['split']} split ({fitted.get('n_images', '?')} images)" if fitted.get("split") else ""
    if calibration["calibrated"]:
        return (
            f"**The malignancy number is a calibrated probability**: fitted{where}, and on held-out images its "
            f"expected calibration error was {calibration['ece']:.3f} (at most {calibration['limit']:.2f} counts)."
        )
    if calibration["ece"] is not None:
        return (
            f"**The malignancy number is a score, not a calibrated probability**: its calibration was fitted{where}, "
            f"and on held-out images its expected calibration error was {calibration['ece']:.3f}, above the "
            f"{calibration['limit']:.2f} a probability needs."
        )
    return (
        f"**The malignancy number is a score, not a calibrated probability**: its calibration was fitted{where}, "
        f"and the card shows no held-out check with an expected calibration error of at most "
        f"{calibration['limit']:.2f}."
    )


# --- review sessions ---------------------------------------------------------------------------------------
def progress_line(
    *, size: int, reviewed: int, shown: int | None, upcoming: int | None, case_key: str | None, shown_done: bool
) -> str:
    """'Case k of N · r reviewed · next: case m · case id: ...' (positions from 0; ``shown``: the case open, if of
    this session; ``upcoming``: the next not reviewed other than it; ``shown_done``: the open one is reviewed)."""
    parts = [f"**Case {shown + 1} of {size}**" if shown is not None else f"{size} cases", f"{reviewed} reviewed"]
    if upcoming is not None:
        parts.append(f"next: case {upcoming + 1}")
    else:
        parts.append("all reviewed" if shown is None or shown_done else "this is the last case left")
    if case_key:
        parts.append(f"case id: {case_key}")
    return " · ".join(parts)


AGREEMENT_CHART = "Outline agreement: mean Jaccard index (0 to 1), n = cases"
AGAINST = {"model": "with the model's first outline", "reference": "with the reference outline"}
