"""Layer helpers the networks share: the conv-BN-ReLU stacks, running them with BatchNorm folded
into the convolutions (once, when a model is prepared for inference), and the CPU kernel for
3x3 convolutions with one output channel."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def conv_stack(cin: int, cout: int, features: int = 64, depth: int = 3) -> nn.Sequential:
    """conv3x3-BN-ReLU x (depth-1), then conv3x3 with bias: the embedding/temperature CNNs."""
    layers: list[nn.Module] = []
    c = cin
    for _ in range(depth - 1):
        layers += [nn.Conv2d(c, features, 3, padding=1, bias=False), nn.BatchNorm2d(features), nn.ReLU(inplace=True)]
        c = features
    layers.append(nn.Conv2d(c, cout, 3, padding=1, bias=True))
    return nn.Sequential(*layers)


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
    """Weight and bias of the single convolution equal to ``bn(conv(x))`` with frozen statistics."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    # products of small weights and scales can be subnormal, as trained weights can
    return flush_subnormal(conv.weight * scale.view(-1, 1, 1, 1)), bias


def flush_subnormal(t: Tensor) -> Tensor:
    """``t`` with subnormal values set to zero (floating-point tensors; others unchanged).

    Weight decay leaves thousands of weights below float32's smallest normal number (1.2e-38);
    on Intel CPUs every multiply with one takes a slow microcode path, which made the shipped
    gray model tens of times slower (docs/design.md). Their contribution to any output is below
    float32 resolution.
    """
    if not t.is_floating_point():
        return t
    return torch.where(t.abs() < torch.finfo(t.dtype).tiny, torch.zeros((), dtype=t.dtype, device=t.device), t)


def run_stack(stack: nn.Sequential, x: Tensor) -> Tensor:
    """Apply ``stack``; in eval mode each conv-BN pair runs as one convolution.

    Folding the frozen BN into the conv's weights saves a full pass over the 64-channel feature
    maps per layer, the largest tensors of these CNNs.
    """
    if stack.training:
        return stack(x)
    mods = list(stack)
    i = 0
    while i < len(mods):
        m = mods[i]
        nxt = mods[i + 1] if i + 1 < len(mods) else None
        if isinstance(m, nn.Conv2d) and isinstance(nxt, nn.BatchNorm2d):
            x = F.conv2d(x, *fold_bn(m, nxt), m.stride, m.padding, m.dilation, m.groups)
            i += 2
        elif _single_output_3x3(m, x):
            x = conv3x3_to_one(x, m.weight, m.bias)
            i += 1
        else:
            x = m(x)
            i += 1
    return x


def _single_output_3x3(m: nn.Module, x: Tensor) -> bool:
    return (isinstance(m, nn.Conv2d) and m.out_channels == 1 and m.kernel_size == (3, 3) and m.padding == (1, 1)
            and m.stride == (1, 1) and m.dilation == (1, 1) and m.groups == 1 and x.dim() == 4 and not x.is_cuda
            and x.is_contiguous(memory_format=torch.channels_last) and not torch.compiler.is_exporting())


def conv3x3_to_one(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.conv2d(x, weight, bias, padding=1)`` for one output channel and a channels-last ``x``.

    One matrix product gives each pixel's 9 tap contributions, nine shifted adds place them.
    oneDNN's CPU kernel for a single output channel runs at a fraction of memory bandwidth
    (the temperature CNN's last layer took 74 ms on a 1024x1024x64 map, this form 37 ms).
    """
    B, C, H, W = x.shape
    y = x.new_empty(B, 1, H, W)
    y.fill_(0.0 if bias is None else float(bias))
    taps = weight.reshape(C, 9).t()  # (taps, C)
    for b in range(B):
        z = (taps @ x[b].reshape(C, H * W)).view(9, H, W)  # x[b] is (HW, C) in memory: no copy
        for t in range(9):
            dy, dx = t // 3 - 1, t % 3 - 1  # output pixel p takes tap t's term of pixel p + (dy, dx)
            y[b, 0, max(0, -dy) : H - max(0, dy), max(0, -dx) : W - max(0, dx)] += \
                z[t, max(0, dy) : H + min(0, dy), max(0, dx) : W + min(0, dx)]
    return y


@torch.no_grad()
def fold_batchnorm(net: nn.Module) -> nn.Module:
    """``net`` (in place) with every conv -> BatchNorm2d pair of its Sequentials replaced by one
    convolution with the BN's frozen statistics folded in, and an Identity where the BN was:
    folded once here instead of on every tile. For inference only (the BN no longer learns)."""
    for seq in [m for m in net.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                weight, bias = fold_bn(conv, bn)
                folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                                   conv.dilation, conv.groups, bias=True, device=weight.device, dtype=weight.dtype)
                folded.weight.copy_(weight)
                folded.bias.copy_(bias)
                folded.eval()
                seq[i], seq[i + 1] = folded, nn.Identity()
    return net
