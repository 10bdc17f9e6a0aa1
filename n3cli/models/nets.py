"""N³Net: DnCNN stages joined by N³ blocks (Plötz & Roth 2018). A plain DnCNN is one stage."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..tiling import centred_mirror_steps
from .layers import run_stack
from .n3 import N3Block2d


class DnCNNStage(nn.Module):
    """conv+ReLU, (depth-2) x [conv, BN, ReLU], conv; the first min(Cin, Cout) output channels
    get the input's first channels added (residual learning)."""

    def __init__(self, cin: int, cout: int, features: int = 64, depth: int = 6) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"DnCNN depth must be >= 2 (got {depth})")
        self.cin, self.cout = cin, cout
        self.conv1 = nn.Conv2d(cin, features, 3, padding=1, bias=True)
        layers: list[nn.Module] = []
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3, padding=1, bias=False), nn.BatchNorm2d(features),
                       nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.conv2 = nn.Conv2d(features, cout, 3, padding=1, bias=True)
        if self.conv1.weight.is_meta:
            # Built only to count parameters (models.registry): nothing to draw, and random draws on
            # the meta device import torch's compiler stack (75 MB of RSS, a second of start-up).
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                # DnCNN's initialisation: small BN scales, so each stage starts close to identity
                with torch.no_grad():
                    m.weight.normal_(0.0, (2.0 / (9.0 * features)) ** 0.5).abs_().clamp_(min=0.025)
                    m.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv2(run_stack(self.body, F.relu(self.conv1(x), inplace=True)))
        n = min(self.cin, self.cout)
        if n == self.cout:
            return y + x[:, :n]
        return torch.cat([y[:, :n] + x[:, :n], y[:, n:]], 1)


class N3Net(nn.Module):
    """``stages`` DnCNN stages with an N³ block between each pair.

    Stage i maps its input to ``mid_channels`` (the last one to ``out_channels``); each N³ block
    turns C channels into (k+1)*C. ``stages=1, depth=17`` is the classic DnCNN-17.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        features: int = 64,
        depth: int = 6,
        stages: int = 3,
        mid_channels: int = 8,
        k: int = 7,
        patch: int = 10,
        stride: int = 5,
        window: int = 15,
        embed_channels: int = 8,
        embed_features: int = 64,
        embed_depth: int = 3,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.blocks = nn.ModuleList()
        self.nls = nn.ModuleList()
        cin = in_channels
        for i in range(stages):
            last = i == stages - 1
            self.blocks.append(DnCNNStage(cin, out_channels if last else mid_channels, features, depth))
            if not last:
                n3 = N3Block2d(mid_channels, k, patch, stride, window, embed_channels, embed_features, embed_depth)
                self.nls.append(n3)
                cin = n3.out_channels
        # size requirements, declared for the tiler: the N³ window needs min_size pixels, and tiles
        # must start on the stride grid to see the same patches as the whole image
        self.min_size = self.nls[0].min_size if len(self.nls) else 1
        self.size_multiple = stride if len(self.nls) else 1
        # tile context that makes tiled == untiled up to float noise (measured: 96 px for the
        # paper's gray N³Net leaves 7e-7; 64 px leaves 2e-4; see docs/design.md)
        self.context = 48 * len(self.nls) if len(self.nls) else 2 * depth * stages

    def forward(self, x: Tensor) -> Tensor:
        H, W = x.shape[-2:]
        ph, pw = max(0, self.min_size - H), max(0, self.min_size - W)
        if ph or pw:
            # too small for the N³ window: mirror out to the minimum size and crop back
            x = _pad_to(x, ph, pw)
        y = self.blocks[0](x)
        for nl, blk in zip(self.nls, self.blocks[1:]):
            y = blk(nl(y))
        if ph or pw:
            y = y[..., ph // 2 : ph // 2 + H, pw // 2 : pw // 2 + W]
        return y


def _pad_to(x: Tensor, ph: int, pw: int) -> Tensor:
    for (top, bottom, left, right), mode in centred_mirror_steps(*x.shape[-2:], ph, pw):
        x = F.pad(x, [left, right, top, bottom], mode="replicate" if mode == "edge" else "reflect")
    return x
