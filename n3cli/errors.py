"""Errors the CLI reports as one line (never a traceback)."""


class N3Error(Exception):
    """A user-facing error: bad input file, bad checkpoint, bad option."""


class CheckpointError(N3Error):
    """A model file that is missing, unreadable, or inconsistent with its own config."""


class ImageError(N3Error):
    """An image that cannot be read or written."""


class ConfigError(N3Error):
    """A training/evaluation config with unknown keys or bad values."""


def first_sentences(text: str, limit: int = 240) -> str:
    """The start of a library's message for a one-line error: its first line, cut after the last
    whole sentence that fits in ``limit`` characters (never mid-word without saying so)."""
    line = (text.strip().splitlines() or [""])[0].strip()
    if len(line) <= limit:
        return line
    cut = line[:limit]
    end = cut.rfind(". ")
    if end > limit // 3:
        return cut[: end + 1]
    return cut[: cut.rfind(" ")].rstrip(",;:") + " ..."


def describe_error(e: Exception, src: object) -> str:
    """One line naming the file: n3's own errors as they are; what NumPy or a file reader raised on
    a bad file (ValueError, OSError) as its message; anything else is a bug, said as such."""
    text = (str(e).strip().splitlines() or [""])[0][:300]
    if isinstance(e, N3Error):
        return text
    if isinstance(e, (ValueError, OSError)):
        return f"{src}: {text or 'cannot process this file'}"
    return f"{src}: internal error ({text or type(e).__name__}); please report it with this file"
