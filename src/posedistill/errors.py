"""Errors that a user can cause (bad input, bad options) and that the CLI reports as one line."""

from __future__ import annotations


class PosedistillError(Exception):
    """A user-facing error: the message names the file or option and what is wrong with it."""


class ConfigError(PosedistillError, ValueError):
    """An invalid option, config value or model name."""


class DataError(PosedistillError):
    """An unreadable or malformed data file (image, annotation, video)."""


class CheckpointError(PosedistillError):
    """A checkpoint or weights file that cannot be loaded safely or does not fit the model."""
