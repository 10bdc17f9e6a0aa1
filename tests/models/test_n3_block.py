"""The N³ relaxation and the 2D block against direct, slow references."""
import math

import pytest
import torch

from n3cli.models.knn import knn_weights, log1mexp, neighbours_set
from n3cli.models.n3 import N3Block2d
from n3cli.models.n3.reference import bn_params, n3_direct


def test_log1mexp_matches_float64_formula():
    x = -torch.logspace(-6, 2, 200, dtype=torch.float64)
    ref = torch.log(1 - torch.exp(x))
    assert torch.allclose(log1mexp(x), ref, rtol=1e-10)
    assert log1mexp(torch.tensor([0.0])).item() == -math.inf
    assert log1mexp(torch.tensor([-math.inf])).item() == 0.0


def test_hard_knn_recovered_as_temperature_goes_to_zero():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 5, 4, generator=g, dtype=torch.float64)
    db = torch.randn(2, 30, 4, generator=g, dtype=torch.float64)
    vals = torch.randn(2, 30, 3, generator=g, dtype=torch.float64)
    out = neighbours_set(q, db, vals, k=4, temperature=1e-6)
    d = torch.cdist(q, db)
    order = d.argsort(-1)[..., :4]  # (2, 5, 4)
    expect = torch.gather(vals.unsqueeze(1).expand(-1, 5, -1, -1), 2,
                          order.unsqueeze(-1).expand(-1, -1, -1, 3))
    assert torch.allclose(out, expect, atol=1e-9)


def test_weights_sum_to_one_and_candidate_form_agrees():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 7, 50, generator=g)
    w = knn_weights(logits, 5)
    assert w.shape == (5, 3, 7, 50)
    assert torch.allclose(w.sum(-1), torch.ones(5, 3, 7), atol=1e-5)
    q = torch.randn(1, 6, 3, generator=g, dtype=torch.float64)
    vals = torch.randn(1, 6, 2, generator=g, dtype=torch.float64)
    full = neighbours_set(q, q, vals, k=2, temperature=0.5, exclude_self=True)
    cand = torch.arange(6).repeat(6, 1)
    via_idx = neighbours_set(q, q, vals, k=2, temperature=0.5, candidates=cand, exclude_self=True)
    assert torch.allclose(full, via_idx, atol=1e-12)


def test_finite_gradients_for_k7_with_peaked_logits():
    logits = (torch.randn(4, 224) * 1e4).requires_grad_()
    w = knn_weights(logits, 7)
    (w * torch.randn_like(w)).sum().backward()
    assert torch.isfinite(logits.grad).all()


def reference_block(block: N3Block2d, x: torch.Tensor) -> torch.Tensor:
    return n3_direct(x, block.embedcnn(x), block.tempcnn(x), bn_params(block.bn), block.k,
                     block.patch, block.stride, block.window)


@pytest.mark.parametrize("size,block,fused", [((84, 97), 4, False), ((100, 80), 6, False), ((91, 91), 32, False),
                                              ((84, 97), None, True), ((100, 80), None, True),
                                              ((151, 172), None, True)])
def test_block_equals_direct_reference_float64(size, block, fused):
    """Both inference forms (blocked; fused, which CPUs run) against the direct definition, with
    every kind of border cell, several chunks of rows and an odd number of cells per row."""
    torch.manual_seed(0)
    m = N3Block2d(2, k=3, block=block).double().eval().set_form("fused" if fused else "blocked")
    with torch.no_grad():
        m.bn.running_mean.fill_(-3.0)
        m.bn.running_var.fill_(4.0)
        m.bn.weight.fill_(1.3)
        m.bn.bias.fill_(0.2)
        for bnm in m.modules():
            if isinstance(bnm, torch.nn.BatchNorm2d):
                bnm.running_mean.uniform_(-0.5, 0.5)
                bnm.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 2, *size, dtype=torch.float64)
    with torch.no_grad():
        fast = m(x)
        ref = reference_block(m, x)
    assert fast.shape == (2, 8, *size)
    assert (fast - ref).abs().max().item() < 1e-6


@pytest.mark.parametrize("window,size", [(3, (23, 41)), (5, (47, 36)), (7, (61, 58))])
def test_fused_block_equals_direct_reference_for_other_windows(window, size):
    """Smaller windows: fewer middle columns than one group of cells, groups clamped to h + 2, and
    grids just above the minimum size (every row a border row)."""
    torch.manual_seed(1)
    m = N3Block2d(3, k=4, window=window).double().eval().set_form("fused")
    with torch.no_grad():
        m.bn.running_var.fill_(2.0)
    x = torch.randn(1, 3, *size, dtype=torch.float64)
    with torch.no_grad():
        fast = m(x)
        ref = n3_direct(x, m.embedcnn(x), m.tempcnn(x), bn_params(m.bn), m.k, m.patch, m.stride, window)
    assert (fast - ref).abs().max().item() < 1e-6


def test_block_trains_with_batch_statistics_and_finite_gradients():
    torch.manual_seed(0)
    m = N3Block2d(3, k=7)
    x = torch.randn(2, 3, 80, 85, requires_grad=True)
    y = m(x)
    y.square().mean().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
    assert m.bn.running_mean.item() != 0.0


def test_inference_path_of_the_relaxation_equals_the_differentiable_one():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(5, 9, 224, generator=g) * torch.tensor([0.1, 1.0, 10.0, 100.0, 1e4]).view(5, 1, 1)
    logits[:, :, 0] = float("-inf")
    with torch.no_grad():
        fast = knn_weights(logits, 7)
    slow = knn_weights(logits.clone().requires_grad_(), 7).detach()
    assert torch.allclose(fast, slow, atol=1e-6)


def test_probability_space_relaxation_equals_the_log_space_one():
    # knn_weights(out=...) runs the relaxation as products; rows where one step takes most of the
    # mass are redone in log space. Either way the weights must be the log-space ones.
    g = torch.Generator().manual_seed(4)
    scales = torch.logspace(-1, 4, 24, dtype=torch.float64)
    logits = torch.randn(16, 24, 224, generator=g, dtype=torch.float64) * scales.view(1, 24, 1)
    logits[:, :, 3] = float("-inf")
    ref = knn_weights(logits.clone().requires_grad_(), 7).detach()
    out = torch.full((7, 16, 24, 224), float("nan"), dtype=torch.float64)
    knn_weights(logits, 7, out=out)
    assert torch.allclose(out, ref, rtol=0, atol=1e-12)  # peaked rows included (the fallback)
    # float32 at moderate temperatures (logit spread up to ~3): close to float64 on the same logits
    mild = logits[:, :8].float()
    out32 = torch.empty(7, 16, 8, 224)
    knn_weights(mild, 7, out=out32)
    assert (out32.double() - knn_weights(mild.double(), 7)).abs().max() < 1e-6


def test_set_form_gradients_are_finite_with_self_excluded_and_learned_temperature():
    g = torch.Generator().manual_seed(3)
    q = torch.randn(2, 20, 5, generator=g, requires_grad=True)
    vals = torch.randn(2, 20, 4, generator=g)
    temp = (torch.rand(2, 20, generator=g) + 0.5).requires_grad_()
    for cand in (None, torch.arange(20).repeat(20, 1)):
        out = neighbours_set(q, q, vals, k=3, temperature=temp, candidates=cand, exclude_self=True)
        out.sum().backward()
        assert torch.isfinite(q.grad).all() and torch.isfinite(temp.grad).all()
        q.grad = temp.grad = None


@pytest.mark.parametrize("size", [(84, 97), (133, 151)])
def test_batched_form_equals_the_looped_form(size):
    """The graph-friendly form (used for ONNX export) computes exactly what the looped one does."""
    torch.manual_seed(1)
    m = N3Block2d(3, k=4).double().eval()
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    with torch.no_grad():
        looped = m(x)
        batched = m.set_form("batched")(x)
    assert (looped - batched).abs().max().item() < 1e-12


def test_inference_path_equals_the_differentiable_path_of_the_block():
    """No-grad inference writes weights and outputs in place; with gradients nothing is in place."""
    torch.manual_seed(2)
    m = N3Block2d(3, k=3).double().eval()
    x = torch.randn(2, 3, 91, 103, dtype=torch.float64)
    with torch.no_grad():
        fast = m(x)
    slow = m(x.clone().requires_grad_(True))
    assert (fast - slow.detach()).abs().max().item() < 1e-12


def test_folded_batchnorm_equals_the_layers_it_replaces():
    from n3cli.models.nets import DnCNNStage

    torch.manual_seed(3)
    stage = DnCNNStage(2, 2, features=16, depth=5).double().eval()
    for bn in stage.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            with torch.no_grad():
                bn.running_mean.uniform_(-1, 1)
                bn.running_var.uniform_(0.5, 2)
                bn.bias.uniform_(-0.2, 0.2)
    x = torch.randn(1, 2, 40, 36, dtype=torch.float64)
    with torch.no_grad():
        folded = stage(x)
        layered = stage.conv2(stage.body(torch.relu(stage.conv1(x)))) + x
    assert (folded - layered).abs().max().item() < 1e-12


@pytest.mark.parametrize("batch,size", [(1, (40, 36)), (2, (9, 1)), (1, (1, 1))])
def test_single_output_convolution_equals_conv2d(batch, size):
    # the temperature CNN's last layer runs as a matrix product and shifted adds on channels-last
    # CPU inputs (run_stack); borders (zero padding) and batches must come out as conv2d's
    from n3cli.models.layers import conv_stack, run_stack

    torch.manual_seed(5)
    stack = conv_stack(3, 1, features=16, depth=3).double().eval()
    x = torch.randn(batch, 3, *size, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        fast = run_stack(stack, x)
        layered = stack(x)
    assert fast.shape == layered.shape == (batch, 1, *size)
    assert (fast - layered).abs().max().item() < 1e-12


def test_channels_last_input_gives_the_same_result_in_channels_last():
    """CPU inference runs channels-last (faster convolutions); the block keeps that layout."""
    torch.manual_seed(4)
    m = N3Block2d(3, k=4).double().eval()
    x = torch.randn(2, 3, 120, 133, dtype=torch.float64)
    with torch.no_grad():
        ref = m(x)
        cl = m(x.contiguous(memory_format=torch.channels_last))
    assert cl.is_contiguous(memory_format=torch.channels_last)
    assert (cl - ref).abs().max().item() < 1e-12


def _grads(m, x):
    """Output, input gradient and parameter gradients of ``sum(out * w)`` for a fixed ``w``."""
    m.zero_grad()
    x = x.clone().requires_grad_(True)
    out = m(x) if not isinstance(m, tuple) else None
    w = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)
    (out * w).sum().backward()
    return out.detach(), x.grad, [p.grad.clone() for p in m.parameters() if p.grad is not None]


@pytest.mark.parametrize("size,dense_form", [((80, 85), True), ((91, 103), True), ((126, 100), False)])
def test_training_forms_equal_the_direct_reference_in_values_and_gradients(size, dense_form, monkeypatch):
    """The differentiable forms (dense on training crops, blocked on larger ones) against autograd
    through the per-patch definition, float64: outputs, input gradients and every weight gradient."""
    from n3cli.models.n3 import dense

    assert dense.fits(*[(s + 4) // 5 - 1 for s in size], 15) == dense_form  # the form under test runs
    torch.manual_seed(3)
    m = N3Block2d(2, k=3).double().eval()
    with torch.no_grad():
        m.bn.running_mean.fill_(-3.0)
        m.bn.running_var.fill_(4.0)
        m.bn.weight.fill_(1.3)
    x = torch.randn(1, 2, *size, dtype=torch.float64)
    out, gx, gp = _grads(m, x)

    class Reference(torch.nn.Module):
        def __init__(self, block):
            super().__init__()
            self.block = block

        def forward(self, t):
            return reference_block(self.block, t)

    rout, rgx, rgp = _grads(Reference(m), x)
    assert (out - rout).abs().max().item() < 1e-6
    assert (gx - rgx).abs().max().item() < 1e-6
    assert len(gp) == len(rgp) and all((a - b).abs().max().item() < 1e-6 * max(1.0, b.abs().max().item())
                                       for a, b in zip(gp, rgp))


def test_dense_training_form_equals_the_blocked_one_with_batch_statistics(monkeypatch):
    """In training mode the BatchNorm takes its statistics over the real candidates only: the
    dense form (masking outside the windows) and the blocked form (windows only) agree."""
    from n3cli.models.n3 import dense

    torch.manual_seed(4)
    m = N3Block2d(3, k=4).double().train()
    x = torch.randn(2, 3, 84, 90, dtype=torch.float64)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    out, gx, gp = _grads(m, x)
    stats = (m.bn.running_mean.clone(), m.bn.running_var.clone())
    m.load_state_dict(state)
    monkeypatch.setattr(dense, "MAX_WASTE", 0.0)  # the blocked form
    bout, bgx, bgp = _grads(m, x)
    assert (out - bout).abs().max().item() < 1e-9 and (gx - bgx).abs().max().item() < 1e-9
    assert all((a - b).abs().max().item() < 1e-8 for a, b in zip(gp, bgp))
    assert torch.allclose(stats[0], m.bn.running_mean) and torch.allclose(stats[1], m.bn.running_var)
