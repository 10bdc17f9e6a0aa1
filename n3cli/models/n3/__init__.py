"""The N³ block: one module (:mod:`.block`), its cell geometry (:mod:`.cells`), its inference and
export forms (:mod:`.fused`, :mod:`.blocked`, :mod:`.batched`) and the per-patch definition they are
all tested against (:mod:`.reference`)."""
from .block import FORMS, N3Block2d, block_form
from .cells import window_starts

__all__ = ["FORMS", "N3Block2d", "block_form", "window_starts"]
