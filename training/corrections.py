"""Training with the model in the loop (RITM, Sofiiuk et al. 2022): corrections of the model's own mistakes.

Before a training step, ``n`` passes without gradients: each predicts the batch, places the clicker's next
click at the prediction's error (:func:`training.clicks.next_click`, the rule evaluation uses) and feeds the
outline forward in the previous-outline channel. The step then learns from the corrected prompt. The
region each sample shows stays fixed over its passes (RITM's crop); the outline is post-processed as the
runtime post-processes it, so the model learns from the outlines users see.
"""

from __future__ import annotations

import numpy as np
import torch

from core.contract import CLICK_ENCODINGS, InputSpec
from core.postprocess import fill_holes, keep_clicked
from core.preprocess import encode_clicks

from .clicks import next_click


@torch.no_grad()
def add_corrections(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, clicks: torch.Tensor, spec: InputSpec, n: int
) -> torch.Tensor:
    """``x`` with ``n`` corrective clicks per sample placed at the model's errors (and its last outline
    in the previous-outline channel, when the contract has one); ``clicks`` (N, K, 3) is updated in place."""
    if n <= 0:
        return x
    was_training = model.training
    model.eval()
    x = x.clone()
    n_click_channels = len(CLICK_ENCODINGS[spec.click_encoding])
    refs = y[:, 0].cpu().numpy() >= 0.5
    points = clicks.numpy()
    for _ in range(n):
        mask_logit, _ = model(x)
        probs = torch.sigmoid(mask_logit[:, 0]).float().cpu().numpy()
        for i, (prob, ref) in enumerate(zip(probs, refs, strict=True)):
            given = points[i][~np.isnan(points[i, :, 0])]
            binary = (prob >= spec.mask_threshold).view(np.uint8)
            shown = fill_holes(keep_clicked(binary, np.rint(given[given[:, 2] == 1, :2]).astype(np.intp)))
            click = next_click(shown, ref, _clicked(given, ref.shape))
            if click is None or len(given) >= len(points[i]):
                continue
            points[i, len(given)] = (click.x, click.y, float(click.positive))
            given = points[i][~np.isnan(points[i, :, 0])]
            channels = encode_clicks(given[given[:, 2] == 1, :2], given[given[:, 2] == 0, :2], spec)
            x[i, 1 : 1 + n_click_channels] = torch.from_numpy(channels).to(x.device)
            if spec.previous_mask:
                x[i, -1] = torch.from_numpy(shown.astype(np.float32)).to(x.device)
    model.train(was_training)
    return x


def _clicked(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The pixels already clicked (rounded model-space positions inside the grid)."""
    clicked = np.zeros(shape, bool)
    xy = np.rint(points[:, :2]).astype(int)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < shape[1]) & (xy[:, 1] >= 0) & (xy[:, 1] < shape[0])
    clicked[xy[inside, 1], xy[inside, 0]] = True
    return clicked
