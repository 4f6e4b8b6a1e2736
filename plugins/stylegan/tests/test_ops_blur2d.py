"""The blur2d op: reference against the definition, the CUDA op's autograd wiring (emulated
kernel, runs everywhere) and the real kernel against the reference (needs a GPU)."""
from __future__ import annotations

import pytest
import torch

from genforce_stylegan.ops import blur2d, blur2d_cuda, blur2d_reference, blur_filter

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason='needs a CUDA device')


def blur_by_definition(x: torch.Tensor, f: torch.Tensor, flip: bool) -> torch.Tensor:
    """y[i, j] = sum w[a, b] x[i + a - fh//2, j + b - fw//2], w = flip(f) unless ``flip``."""
    w = f if flip else f.flip([0, 1])
    fh, fw = f.shape
    n, c, h, wd = x.shape
    y = torch.zeros_like(x)
    for a in range(fh):
        for b in range(fw):
            du, dv = a - fh // 2, b - fw // 2
            src = x[:, :, max(du, 0):h + min(du, 0), max(dv, 0):wd + min(dv, 0)]
            y[:, :, max(-du, 0):h + min(-du, 0), max(-dv, 0):wd + min(-dv, 0)] += w[a, b] * src
    return y


@pytest.mark.parametrize('flip', [False, True])
def test_reference_matches_the_definition(flip):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    f = torch.randn(3, 5, dtype=torch.float64)  # asymmetric, so that flipping matters
    assert torch.allclose(blur2d_reference(x, f, flip), blur_by_definition(x, f, flip))
    assert torch.allclose(blur2d(x, f, flip), blur_by_definition(x, f, flip))


def test_blur_filter_and_errors():
    f = blur_filter()
    assert torch.allclose(f * 16, torch.tensor([[1., 2, 1], [2, 4, 2], [1, 2, 1]]))
    x = torch.ones(1, 2, 5, 5)
    y = blur2d(x, f)  # a constant image stays constant away from the border
    assert torch.allclose(y[..., 1:-1, 1:-1], torch.ones(1, 2, 3, 3))
    assert float(y[0, 0, 0, 0]) == pytest.approx(9 / 16)
    with pytest.raises(ValueError, match='odd'):
        blur_filter((1, 1))
    with pytest.raises(ValueError, match='odd sizes'):
        blur2d(x, torch.ones(2, 2))
    with pytest.raises(ValueError, match='impl'):
        blur2d(x, f, impl='triton')
    assert torch.equal(blur2d(x, f, impl='cuda'), blur2d(x, f, impl='ref'))  # CPU: reference


def test_adjoint_is_the_flipped_blur():
    torch.manual_seed(1)
    x, y = torch.randn(2, 3, 6, 5, dtype=torch.float64), torch.randn(2, 3, 6, 5,
                                                                       dtype=torch.float64)
    f = torch.randn(3, 3, dtype=torch.float64)
    lhs = (blur2d_reference(x, f) * y).sum()
    rhs = (x * blur2d_reference(y, f, flip_filter=True)).sum()
    assert torch.allclose(lhs, rhs)


class _EmulatedKernel:
    """Stands in for the compiled extension: the kernel's math through the reference."""

    @staticmethod
    def blur2d(x, f, flip):
        return blur_by_definition(x, f.to(x.dtype), flip)


def test_cuda_autograd_wiring_with_an_emulated_kernel(monkeypatch):
    monkeypatch.setattr(blur2d_cuda._EXTENSION, 'module', lambda: _EmulatedKernel)
    torch.manual_seed(2)
    f = torch.randn(3, 3, dtype=torch.float64)
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: blur2d_cuda.blur2d(t, f), (x,))
    assert torch.autograd.gradgradcheck(lambda t: blur2d_cuda.blur2d(t, f) ** 2, (x,))
    # Same first and second derivatives as the reference (R1 differentiates twice).
    results = []
    for fn in (lambda t: blur2d_cuda.blur2d(t, f), lambda t: blur2d_reference(t, f)):
        (g,) = torch.autograd.grad(fn(x).square().sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad(g.sin().sum(), x)
        results.append((g.detach(), gg))
    assert torch.allclose(results[0][0], results[1][0])
    assert torch.allclose(results[0][1], results[1][1])


def test_op_status_is_reported_by_the_plugin():
    from genforce_stylegan import plugin

    status = plugin.genforce_op_status()
    assert set(status) == {'blur2d'} and isinstance(status['blur2d'], str)


@needs_cuda
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64, torch.float16])
def test_cuda_kernel_matches_the_reference(dtype):
    assert blur2d_cuda.is_available(), blur2d_cuda.status()
    torch.manual_seed(3)
    x = torch.randn(3, 5, 17, 9, device='cuda', dtype=dtype)
    for f in (blur_filter(), torch.randn(3, 5)):
        for flip in (False, True):
            ref = blur2d_reference(x.double(), f, flip)
            got = blur2d(x, f, flip, impl='cuda')
            tol = 1e-2 if dtype == torch.float16 else 1e-5
            assert got.dtype == dtype and torch.allclose(got.double(), ref, atol=tol)


@needs_cuda
def test_cuda_kernel_gradients_match_the_reference():
    torch.manual_seed(4)
    f = blur_filter()
    x = torch.randn(2, 4, 8, 8, device='cuda', dtype=torch.float64, requires_grad=True)
    results = []
    for impl in ('cuda', 'ref'):
        (g,) = torch.autograd.grad(blur2d(x, f, impl=impl).square().sum(), x,
                                   create_graph=True)
        (gg,) = torch.autograd.grad(g.sin().sum(), x)
        results.append((g.detach(), gg))
    assert torch.allclose(results[0][0], results[1][0])
    assert torch.allclose(results[0][1], results[1][1])


def test_the_self_check_passes_the_kernels_math_and_catches_a_wrong_kernel(monkeypatch):
    monkeypatch.setattr(blur2d_cuda._EXTENSION, 'module', lambda: _EmulatedKernel)
    assert blur2d_cuda.self_check('cpu') is None

    class Flipped:  # forgets to flip the filter: right for symmetric filters only
        @staticmethod
        def blur2d(x, f, flip):
            return blur_by_definition(x, f.to(x.dtype), not flip)

    monkeypatch.setattr(blur2d_cuda._EXTENSION, 'module', lambda: Flipped)
    assert blur2d_cuda.self_check('cpu').startswith('output differs')
