"""Checkpoints: weights, the input contract, the config and the git revision, in one file.

:func:`load_predictor` turns a checkpoint into a :class:`core.runtime.Predictor`, so a PyTorch
model is evaluated through exactly the same preprocessing and post-processing as an ONNX one.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import torch

from core.contract import InputSpec
from core.runtime import Predictor

from .config import TrainConfig
from .networks import ClickNet, WithProbabilities, build_network


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def save_checkpoint(path: Path, model: torch.nn.Module, cfg: TrainConfig, **state) -> None:
    """Write atomically (temp file + rename) so an interruption never leaves a broken checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": model.state_dict(),
        "spec": cfg.spec().to_json(),
        "config": cfg.to_dict(),
        "git_revision": git_revision(),
        **state,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path) -> tuple[ClickNet, TrainConfig, InputSpec, dict]:
    ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    cfg = TrainConfig(**ckpt["config"])
    model = build_network(cfg)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, cfg, InputSpec.from_json(ckpt["spec"]), ckpt


class TorchPredictor(Predictor):
    """A PyTorch network behind the runtime's Predictor interface, run where the network lives.

    As SAM's predictor asks its model, it never moves the network nor leaves its mode or dtype changed: a
    pass runs in eval mode under ``no_grad`` on the network's own device and dtype and restores the mode it
    found, so training can validate the very network it trains (on a GPU, under DDP, in train mode).
    """

    def __init__(self, model: torch.nn.Module, spec: InputSpec, card: dict | None = None):
        self.model = WithProbabilities(model, spec.temperature)
        self.spec, self.card = spec, card or {}

    @property
    def provider(self) -> str:
        return f"pytorch-{self._weights().device}"

    def _weights(self) -> torch.Tensor:
        return next(self.model.parameters())

    @torch.no_grad()
    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        weights, training = self._weights(), self.model.training
        self.model.eval()
        try:
            mask, probs = self.model(torch.from_numpy(np.asarray(batch)).to(weights.device, weights.dtype))
        finally:
            self.model.train(training)
        return mask[:, 0].float().cpu().numpy(), probs.float().cpu().numpy()


def load_predictor(path: str | Path, device: str = "cpu") -> TorchPredictor:
    model, cfg, spec, ckpt = load_checkpoint(path)
    card = {"name": Path(path).stem, "version": checkpoint_version(ckpt), "git_revision": ckpt.get("git_revision")}
    return TorchPredictor(model.to(device), spec, card)


def load_for_provider(path: str | Path, provider: str = "auto") -> TorchPredictor:
    """A checkpoint as ``core.runtime.load_model`` loads a ``.pt``/``.pth`` file: on the GPU for
    ``provider`` cuda, or auto when CUDA is available."""
    cuda = provider == "cuda" or (provider == "auto" and torch.cuda.is_available())
    return load_predictor(path, device="cuda" if cuda else "cpu")


def checkpoint_version(ckpt: dict) -> str:
    """A checkpoint's version: its training iteration."""
    return f"iter {ckpt.get('iteration', '?')}"


PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """A shipped checkpoint's name (``training/pretrained/<name>.pt``, e.g. ``busi_joint_lite``) or a path."""
    shipped = PRETRAINED_DIR / f"{name_or_path}.pt"
    path = shipped if shipped.is_file() else Path(name_or_path)
    if not path.is_file():
        names = sorted(p.stem for p in PRETRAINED_DIR.glob("*.pt"))
        raise FileNotFoundError(f"no checkpoint at {name_or_path} (shipped: {', '.join(names) or 'none'})")
    return path


FIRST_CONV = "encoder.stages.0.0.0.weight"


def init_from_checkpoint(model: ClickNet, path: str | Path, stages: int, spec: InputSpec, heads: bool = False) -> int:
    """Copy the first ``stages`` encoder stages (and with ``heads`` the segmentation and classification heads)
    from another checkpoint (a path or a shipped name), where shapes match; returns the number of tensors copied.

    The paper initialises early layers from a breast-US network. The first convolution is matched by input
    channel name: a channel the source has is copied, a new one (e.g. the previous outline) starts at zero,
    so a network with new inputs begins computing exactly what the source computed.
    """
    ckpt = torch.load(str(resolve_checkpoint(path)), map_location="cpu", weights_only=False)
    source, source_spec = ckpt["model"], InputSpec.from_json(ckpt["spec"])
    own = model.state_dict()
    prefixes = tuple(f"encoder.stages.{i}." for i in range(stages)) + (("seg_head.", "cls_head.") if heads else ())
    copied = {k: v for k, v in source.items() if k.startswith(prefixes) and k in own and own[k].shape == v.shape}
    if stages > 0 and FIRST_CONV in source and FIRST_CONV not in copied and model.system != "cls":
        weight = torch.zeros_like(own[FIRST_CONV])
        src = source[FIRST_CONV]
        if weight.shape[0] == src.shape[0]:
            for i, name in enumerate(spec.channels):
                if name in source_spec.channels:
                    weight[:, i] = src[:, source_spec.channels.index(name)]
            copied[FIRST_CONV] = weight
    model.load_state_dict(copied, strict=False)
    return len(copied)
