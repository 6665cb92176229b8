"""The inverse of ``trainables.cnn2d.to_grid``: tests check that the grid keeps every sample of a beat."""

from __future__ import annotations

import numpy as np
import torch


def from_grid(images: torch.Tensor | np.ndarray):
    """[batch, 1, rows, cols] -> [batch, rows * cols]."""
    return images.reshape(images.shape[0], -1)
