"""The finder network lives in the package (:mod:`posedistill.models.finder`); the names this prototype's scripts
use are kept here."""

from __future__ import annotations

import numpy as np

from posedistill.deploy.optimize import fold_batchnorm
from posedistill.models.finder import STRIDE, PersonFinder, decode_people

__all__ = ["STRIDE", "PersonFinder", "decode", "fuse_for_inference"]


def fuse_for_inference(model: PersonFinder) -> PersonFinder:
    """Eval mode, every BatchNorm folded into its convolution (in place)."""
    return fold_batchnorm(model.eval(), inplace=True)


def decode(out: np.ndarray, *, top_k: int = 1, input_size: int = 128) -> list[list[tuple[float, np.ndarray]]]:
    """:func:`posedistill.models.finder.decode_people`."""
    return decode_people(out, top_k=top_k, input_size=input_size)
