"""Noise correlated between neighbours and planes: its statistics, and what the raw fit reads of it."""
import numpy as np
import pytest
import torch

from n3cli.imaging.correlated_noise import correlated_normal, laplacian_share, side_tap
from n3cli.imaging.raw_noise import estimate_noise_params


def _lag1(x: np.ndarray, axis: int) -> float:
    a, b = np.moveaxis(x, axis, 0)[1:], np.moveaxis(x, axis, 0)[:-1]
    return float((a * b).mean() / x.var())


def test_the_field_has_unit_variance_and_the_correlations_asked_for():
    rho_row, rho_col, share = torch.tensor([0.0, 0.12, 0.3]), torch.tensor([0.0, 0.03, 0.17]), torch.tensor([0.0, 0.05, 0.2])
    z = correlated_normal((3, 4, 200, 200), rho_row, rho_col, share, torch.Generator().manual_seed(3)).numpy()
    assert z.shape == (3, 4, 200, 200)
    for i in range(3):
        assert abs(z[i].var() - 1) < 0.02
        assert abs(_lag1(z[i], 2) - float(rho_row[i])) < 0.01  # one cell right
        assert abs(_lag1(z[i], 1) - float(rho_col[i])) < 0.01  # one cell down
        assert abs(float((z[i, 0] * z[i, 3]).mean()) - float(share[i])) < 0.015
        # the 1-cell margin the filter uses up: the border row is as correlated as the middle
        assert abs(float((z[i, :, :, 0] * z[i, :, :, 1]).mean()) - float(rho_row[i])) < 0.04


def test_side_tap_inverts_the_filters_lag_1_correlation():
    rho = torch.tensor([0.0, 0.05, 0.2, 0.5])
    t = side_tap(rho)
    assert torch.allclose(2 * t / (1 + 2 * t * t), rho, atol=1e-6)
    assert float(laplacian_share(torch.tensor(0.0))) == 1.0


@pytest.mark.parametrize("rho_row,rho_col", [(0.0, 0.0), (0.12, 0.03), (0.19, 0.17), (0.0, 0.3)])
def test_the_raw_fit_reads_the_variance_times_the_laplacians_share(rho_row, rho_col):
    """What the RAW training tells a model of correlated noise is what `n3 denoise` will read of it."""
    z = correlated_normal((1, 4, 384, 384), torch.tensor([rho_row]), torch.tensor([rho_col]), torch.tensor([0.1]),
                          torch.Generator().manual_seed(1))[0].double().numpy()
    x = np.linspace(0.05, 0.8, 384)[None, None, :] * np.ones((4, 384, 1))
    a, b = 1e-4, 1e-6
    ea, eb = estimate_noise_params(x + np.sqrt(a * x + b) * z)
    share = float(laplacian_share(side_tap(torch.tensor(rho_row))) * laplacian_share(side_tap(torch.tensor(rho_col))))
    read = (ea * 0.4 + eb) / (a * 0.4 + b)
    assert abs(read / share - 1) < 0.1, (read, share)
    if rho_row or rho_col:
        assert read < 0.9  # correlated noise reads low: why the training maps say so
