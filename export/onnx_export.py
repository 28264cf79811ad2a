"""Checkpoint -> ONNX, with the contract inside and a parity gate that the file must pass.

``liverclick export --checkpoint CKPT --out MODEL.onnx [--fp16] [--opset N] [--card CARD.json] [--calibration C.json]``

1. Wrap the network so it returns probabilities (sigmoid and the calibrated softmax folded in), export one
   self-contained file with named input ``input`` (N, C, S, S) and outputs ``mask_prob`` (N, 1, S, S),
   ``class_probs``.
2. Write the input spec and a model-card summary into the ONNX metadata; ``onnx.checker`` full check.
3. Parity gate: the file in ONNX Runtime and the checkpoint in PyTorch on the same fixed inputs
   (phantom images with simulated box and click prompts, built by ``core`` as at run time) must agree:
   max |difference| of probabilities within the tolerance, mask Jaccard >= 0.999 and the same class.
   Otherwise export fails and no file is written.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import onnx
import torch

from core.contract import CARD_METADATA_KEY, SPEC_METADATA_KEY, InputSpec
from core.framing import correction_extent, frame_for
from core.metrics import jaccard
from core.preprocess import model_input
from core.runtime import CLASS_OUTPUT, INPUT_NAME, MASK_OUTPUT, Segmenter
from training.checkpoint import TorchPredictor, checkpoint_version, load_checkpoint
from training.clicks import MODES, evaluation_prompts
from training.evaluation.summary import benign_malignant
from training.networks import WithProbabilities
from training.phantoms import CLASSES as PHANTOM_CLASSES
from training.phantoms import make_phantom

# The gate, per precision: max |p_onnx - p_torch| (mask and class probabilities) and the least Jaccard
# between the thresholded masks. Half precision moves pixels that sit at the threshold, hence 0.99.
TOLERANCE = {"fp32": 1e-3, "fp16": 2e-2}
MIN_MASK_JACCARD = {"fp32": 0.999, "fp16": 0.99}


class ParityError(RuntimeError):
    """The exported model does not compute what the checkpoint computes."""


@dataclass(frozen=True)
class ParityReport:
    max_abs_mask: float
    max_abs_class: float
    min_mask_jaccard: float
    same_class: bool
    tolerance: float
    min_jaccard: float
    n_inputs: int
    runtime: str  # what ran the ONNX file: ONNX Runtime's execution provider
    reference: str  # what ran the checkpoint: PyTorch and its device

    @property
    def passed(self) -> bool:
        return (
            self.max_abs_mask <= self.tolerance
            and self.max_abs_class <= self.tolerance
            and self.min_mask_jaccard >= self.min_jaccard
            and self.same_class
        )

    def __str__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"parity {verdict} on {self.n_inputs} inputs, ONNX Runtime {self.runtime} against {self.reference}: "
            f"max|dmask| {self.max_abs_mask:.2e}, "
            f"max|dclass| {self.max_abs_class:.2e} (tolerance {self.tolerance:g}), "
            f"min mask Jaccard {self.min_mask_jaccard:.5f} (>= {self.min_jaccard}), same class: {self.same_class}"
        )


def parity_inputs(spec: InputSpec, n_images: int = 4, seed: int = 0) -> np.ndarray:
    """(N, C, S, S) fixed inputs: phantoms with two-click and one-click prompts, as the runtime builds them, and
    for a previous-outline contract a corrective click with an earlier outline (the reference, shrunk)."""
    batch = []
    for i in range(n_images):
        gray, mask = make_phantom(PHANTOM_CLASSES[i % len(PHANTOM_CLASSES)], seed + i)
        h, w = gray.shape
        for mode in MODES:
            (prompt,) = evaluation_prompts(mask, mode, 1, seed=seed, case_id=f"phantom_{i}")
            batch.append(model_input(gray, prompt, frame_for(prompt, w, h, spec), spec))
        if spec.previous_mask:  # a corrective click on the last prompt, with an earlier outline
            earlier = cv2.erode(mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
            frame = frame_for(prompt, w, h, spec, correction_extent(earlier, prompt))
            batch.append(model_input(gray, prompt, frame, spec, previous=earlier))
    return np.stack(batch).astype(np.float32)


def check_parity(
    onnx_path: Path, net: torch.nn.Module, spec: InputSpec, fp16: bool = False, provider: str = "auto"
) -> ParityReport:
    """Compare the ONNX file in ONNX Runtime (``provider``) with the PyTorch network, run where it is, on
    :func:`parity_inputs`; the report names both."""
    x = parity_inputs(spec)
    reference = TorchPredictor(net, spec)
    ref_mask, ref_cls = reference.run(x)
    session = Segmenter(onnx_path, provider=provider)
    got_mask, got_cls = [], []
    for i in range(len(x)):  # one at a time, as clicks arrive
        m, c = session.run(x[i : i + 1])
        got_mask.append(m[0])
        got_cls.append(c[0])
    got_mask, got_cls = np.stack(got_mask), np.stack(got_cls)
    t = spec.mask_threshold
    return ParityReport(
        max_abs_mask=float(np.abs(got_mask - ref_mask).max()),
        max_abs_class=float(np.abs(got_cls - ref_cls).max()),
        min_mask_jaccard=min(jaccard(a >= t, b >= t) for a, b in zip(got_mask, ref_mask, strict=True)),
        same_class=bool((got_cls.argmax(1) == ref_cls.argmax(1)).all()),
        tolerance=TOLERANCE["fp16" if fp16 else "fp32"],
        min_jaccard=MIN_MASK_JACCARD["fp16" if fp16 else "fp32"],
        n_inputs=len(x),
        runtime=session.provider,
        reference=reference.provider.replace("pytorch-", f"PyTorch {torch.__version__} on "),
    )


def model_card(cfg, ckpt: dict, extra: dict | None = None) -> dict:
    """The card summary stored in the ONNX metadata (the full card lives in docs/model-card.md)."""
    card = {
        "name": Path(cfg.data).parent.name + f"_{cfg.system}_w{cfg.width:g}" if cfg.data else f"{cfg.system}",
        "version": checkpoint_version(ckpt),
        "system": cfg.system,
        "width": cfg.width,
        "classes": list(cfg.classes),
        "malignant_classes": list(cfg.malignant),
        "training_data": cfg.data,
        "iterations": ckpt.get("iteration"),
        "git_revision": ckpt.get("git_revision", "unknown"),
        "notice": "Research and demonstration tool. Not a medical device; not for diagnosis.",
    }
    card.update(extra or {})
    return card


def metrics_from_report(report: dict) -> dict:
    """The headline figures of an evaluation report (``liverclick evaluate``) for the model card."""
    data = report.get("data", {})
    out: dict = {
        "split": f"{data.get('manifest', '?')} [{data.get('split', '?')}], {data.get('n_images')} images, "
        f"{data.get('n_inputs')} simulated inputs per image and mode"
    }
    for key, s in report.get("segmentation", {}).items():
        out[f"{key}_jaccard"] = {"mean": s["mean_ji"], "sd": s["sd_ji"], "ci95": s["ci95"]}
    bm = benign_malignant(report.get("classification"))
    if bm:
        out["benign_malignant"] = {
            k: bm[k]
            for k in (
                "auroc",
                "auroc_ci95",
                "sensitivity",
                "sensitivity_ci95",
                "specificity",
                "specificity_ci95",
                "accuracy",
                "accuracy_ci95",
            )
        }
        if "calibration" in bm:  # the check of the calibration on the evaluated split (webapp.card.held_out_ece)
            cal = bm["calibration"]
            out["benign_malignant"]["calibration"] = {
                "per_image": {k: cal["per_image"][k] for k in ("ece", "ece_ci95", "brier") if k in cal["per_image"]},
                "per_input": {k: cal["per_input"][k] for k in ("ece", "brier")},
            }
    if report.get("noc"):
        out["noc"] = {k: report["noc"][k] for k in ("noc85", "noc85_ci95", "noc90", "noc90_ci95")}
    return _rounded(out)


def _rounded(value, digits: int = 4):
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return value


def export_onnx(
    checkpoint: Path,
    out: Path,
    fp16: bool = False,
    opset: int = 18,
    card: dict | None = None,
    calibration: dict | None = None,
) -> ParityReport:
    """Export, embed contract and card, check, gate; the file appears at ``out`` only if the gate passes.

    ``calibration`` (from ``liverclick calibrate``) sets the contract's temperature, folded into the exported
    class probabilities, and its operating points."""
    net, cfg, spec, ckpt = load_checkpoint(checkpoint)
    if calibration:
        spec = replace(spec, temperature=calibration["temperature"], operating_points=calibration["operating_points"])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        tmp_path = Path(tmp) / out.name
        _torch_export(WithProbabilities(net, spec.temperature).eval(), spec, tmp_path, opset)
        model = onnx.load(str(tmp_path))
        if fp16:
            from onnxruntime.transformers.float16 import convert_float_to_float16

            model = convert_float_to_float16(model, keep_io_types=False)
        meta = {SPEC_METADATA_KEY: spec.to_json(), CARD_METADATA_KEY: json.dumps(model_card(cfg, ckpt, card))}
        del model.metadata_props[:]
        onnx.helper.set_model_props(model, meta)
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(tmp_path))
        report = check_parity(tmp_path, net, spec, fp16)
        if not report.passed:
            raise ParityError(str(report))
        tmp_path.replace(out)
    return report


def _torch_export(module: torch.nn.Module, spec: InputSpec, path: Path, opset: int) -> None:
    dummy = torch.zeros(1, spec.in_channels, spec.input_size, spec.input_size)
    logging.getLogger("onnxscript").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (dummy,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[MASK_OUTPUT, CLASS_OUTPUT],
            dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=64)},),
            opset_version=opset,
            dynamo=True,
            external_data=False,
            optimize=True,
            verbose=False,
        )
