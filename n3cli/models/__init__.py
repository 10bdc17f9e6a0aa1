"""Networks and the N³ block. Nothing here knows about files or the command line."""
from .knn import knn_weights, log1mexp, neighbours_set
from .n3 import N3Block2d
from .nets import DnCNNStage, N3Net
from .registry import ARCHITECTURES, build_model, register

__all__ = ["ARCHITECTURES", "DnCNNStage", "N3Block2d", "N3Net", "build_model", "knn_weights", "log1mexp",
           "neighbours_set", "register"]
