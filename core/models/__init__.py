"""Bundled models, found by name (``default``, or the model's own name) or by path."""

from __future__ import annotations

import os
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
BUNDLED = {"default": "busi_joint_lite.onnx", "busi_joint_lite": "busi_joint_lite.onnx"}


def resolve_model(model: str | os.PathLike) -> Path:
    """A bundled model's name, or a path to an ONNX file, -> an existing path."""
    name = str(model)
    if name in BUNDLED:
        path = MODELS_DIR / BUNDLED[name]
        if not path.is_file():
            raise FileNotFoundError(f"the bundled model '{name}' ({path.name}) is not installed")
        return path
    path = Path(name).expanduser()
    if not path.is_file():
        known = ", ".join(sorted(BUNDLED))
        raise FileNotFoundError(f"no model file at {path} (bundled models: {known})")
    return path
