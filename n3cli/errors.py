"""Errors the CLI reports as one line (never a traceback)."""


class N3Error(Exception):
    """A user-facing error: bad input file, bad checkpoint, bad option."""


class CheckpointError(N3Error):
    """A model file that is missing, unreadable, or inconsistent with its own config."""


class ImageError(N3Error):
    """An image that cannot be read or written."""


class ConfigError(N3Error):
    """A training/evaluation config with unknown keys or bad values."""
