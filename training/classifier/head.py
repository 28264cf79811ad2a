"""A head fitted by scikit-learn, installed in the network's classifier exactly, so that export, the runtime and
evaluation run it as any trained head.

``ClassifierHead`` is Linear -> ReLU -> Dropout -> Linear on the pooled features. The input standardisation folds
into the first layer. A one-hidden-layer MLP maps onto it unit for unit; a linear model's K logits z pass the
ReLU as pairs, max(z, 0) and max(-z, 0), whose difference the last layer takes. A binary model's logit becomes
the class logits (0, z), whose softmax is the model's sigmoid.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.pipeline import Pipeline

from ..networks import ClickNet


def affine_layers(pipeline: Pipeline) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(W1, b1, W2, b2) with ``logits = W2 relu(W1 x + b1) + b2`` computing the pipeline's class logits
    (one column per class) from raw features ``x``."""
    scaler, model = pipeline[0], pipeline[-1]
    mean, scale = scaler.mean_, scaler.scale_
    if hasattr(model, "coefs_"):  # MLPClassifier, one hidden ReLU layer
        w1, b1 = model.coefs_[0].T, model.intercepts_[0]
        w2, b2 = model.coefs_[1].T, model.intercepts_[1]
    else:  # a linear model: each logit through a ReLU pair
        z, c = np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_)
        w1, b1 = np.vstack([z, -z]), np.concatenate([c, -c])
        k = len(z)
        w2, b2 = np.hstack([np.eye(k), -np.eye(k)]), np.zeros(k)
    if len(w2) == 1:  # binary: logits (0, z)
        w2, b2 = np.vstack([np.zeros_like(w2), w2]), np.concatenate([[0.0], b2])
    w1_raw = w1 / scale
    return w1_raw, b1 - w1_raw @ mean, w2, b2


def install_head(net: ClickNet, pipeline: Pipeline) -> None:
    """Replace the network's classification head by the fitted pipeline (unused hidden units get zero weights)."""
    w1, b1, w2, b2 = affine_layers(pipeline)
    first, last = net.cls_head.fc[0], net.cls_head.fc[3]
    if w1.shape[1] != first.in_features or w1.shape[0] > first.out_features or w2.shape[0] != last.out_features:
        raise ValueError(
            f"a head of {w1.shape[0]} units on {w1.shape[1]} features for {w2.shape[0]} classes does not fit "
            f"the network's ({first.out_features} units, {first.in_features} features, {last.out_features} classes)"
        )
    with torch.no_grad():
        for layer in (first, last):
            layer.weight.zero_()
            layer.bias.zero_()
        units = len(w1)
        first.weight[:units] = torch.as_tensor(w1, dtype=first.weight.dtype)
        first.bias[:units] = torch.as_tensor(b1, dtype=first.bias.dtype)
        last.weight[:, :units] = torch.as_tensor(w2, dtype=last.weight.dtype)
        last.bias[:] = torch.as_tensor(b2, dtype=last.bias.dtype)
