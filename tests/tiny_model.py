"""A tiny, prompt-dependent ONNX model built with onnx.helper (no torch), carrying a valid contract.

Mask: sigmoid(gain * (radius - fg_distance)): the pixels within ``radius`` (as a fraction of the
distance truncation) of a foreground click. Classes: softmax of a fixed linear map of the channel means.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from core.contract import CARD_METADATA_KEY, SPEC_METADATA_KEY, InputSpec

BINARY = dict(class_names=("benign", "malignant"), malignant_classes=("malignant",))
FOUR_CLASS = dict(class_names=("cyst", "hemangioma", "metastasis", "hcc"), malignant_classes=("metastasis", "hcc"))


def build_tiny_model(
    path: Path,
    spec: InputSpec | None = None,
    radius: float = 0.1,
    gain: float = 40.0,
    spec_json: str | None = None,
    card: dict | None = None,
) -> Path:
    spec = spec or InputSpec(input_size=64, **BINARY)
    n_cls = spec.num_classes
    w_mask = np.array([0.0, -gain, 0.0], dtype=np.float32).reshape(1, 3, 1, 1)
    b_mask = np.array([gain * radius], dtype=np.float32)
    rng = np.random.default_rng(0)
    w_cls = rng.normal(size=(3, n_cls)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "w_mask", "b_mask"], ["mask_logit"]),
        helper.make_node("Sigmoid", ["mask_logit"], ["mask_prob"]),
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w_cls"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["class_probs"], axis=1),
    ]
    s = spec.input_size
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, s, s])],
        [
            helper.make_tensor_value_info("mask_prob", TensorProto.FLOAT, ["N", 1, s, s]),
            helper.make_tensor_value_info("class_probs", TensorProto.FLOAT, ["N", n_cls]),
        ],
        [numpy_helper.from_array(a, n) for a, n in ((w_mask, "w_mask"), (b_mask, "b_mask"), (w_cls, "w_cls"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {CARD_METADATA_KEY: json.dumps(card or {"name": "tiny-test", "version": "0"})}
    if spec_json is None:
        spec_json = spec.to_json()
    if spec_json != "":
        meta[SPEC_METADATA_KEY] = spec_json
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path
