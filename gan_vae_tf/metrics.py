"""Evaluation metrics as pure functions of arrays: no models, no files."""
from __future__ import annotations

import math

import numpy as np


def sigmoid(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -logits))


def mean_probability(logits: np.ndarray) -> float:
    """Mean sigmoid(D) over images: the discriminator's average belief that they are real."""
    return float(np.mean(sigmoid(logits)))


def mean_and_stderr(values: np.ndarray) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64).ravel()
    stderr = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    return float(values.mean()), stderr


def bits_per_dim(nats_per_image: float, dims: int) -> float:
    """Convert a per-image log-likelihood bound in nats to bits per pixel-channel."""
    return float(-nats_per_image / (dims * math.log(2.0)))


def mse(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2))
