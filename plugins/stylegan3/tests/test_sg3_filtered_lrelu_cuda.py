"""The CUDA path of ``filtered_lrelu`` against the reference.

* ``test_host_*`` run everywhere a C++ compiler is: the kernel's per-block code
  (``ops/cuda/filtered_lrelu_tile.h``) compiled for the CPU (tests/native) stands in for the
  extension, so its indexing — tiles, offsets, tap selection, the recorded mask — and the
  Python autograd wiring around it (transposed geometry, second order) are checked against the
  reference without a GPU.
* ``test_cuda_*`` (``gpu`` marker) need a CUDA device: the real kernel — values in float32,
  float64 and float16, gradients of first and second order, and the tiny StyleGAN3-T/-R
  generators giving the same images and gradients with the kernel and the reference.
"""
from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from genforce_core.api import reference_ops
from genforce_stylegan3.ops import filtered_lrelu, filtered_lrelu_cuda, filtered_lrelu_reference

CUDA = torch.cuda.is_available()
_skip_without_cuda = pytest.mark.skipif(not CUDA, reason='needs a CUDA device')
NATIVE = Path(__file__).resolve().parent / 'native' / 'filtered_lrelu_host.cpp'
CUDA_DIR = Path(filtered_lrelu_cuda.__file__).resolve().parent / 'cuda'


def needs_cuda(obj):
    """Mark ``obj`` as a GPU test, skipped without a CUDA device."""
    return pytest.mark.gpu(_skip_without_cuda(obj))


def _filter(spec, gen: torch.Generator) -> torch.Tensor | None:
    """None, ``('1d', taps)`` or ``('2d', h, w)``: random positive taps (asymmetric, so that
    flipping matters) with unit DC gain."""
    if spec is None:
        return None
    shape = spec[1:]
    f = torch.rand(shape, generator=gen, dtype=torch.float64) + 0.2
    return (f / f.sum()).float()


# (input h, w, up, down, padding [x0, x1, y0, y1], fu, fd, gain, slope, clamp, flip, bias)
CASES = [
    (9, 8, 2, 2, (5, 4, 5, 4), ('1d', 12), ('1d', 12), 2 ** 0.5, 0.2, None, False, True),
    (9, 8, 4, 2, (-2, 5, 4, -1), ('1d', 24), ('1d', 12), 1.3, 0.2, 0.7, False, True),
    (7, 9, 2, 2, (7, 6, 7, 6), ('1d', 12), ('2d', 12, 12), 2 ** 0.5, 0.2, 0.9, False, True),
    (6, 5, 1, 1, (0, 0, 0, 0), None, None, 1.0, 1.0, None, False, True),
    (8, 7, 1, 2, (1, 2, 0, 3), None, ('2d', 3, 5), 1.0, 0.2, None, True, False),
    (6, 7, 2, 1, (2, 1, 2, 1), ('2d', 4, 3), ('1d', 3), 1.7, 0.1, 0.5, False, True),
    (5, 6, 4, 4, (3, 3, 3, 3), ('1d', 8), ('1d', 8), 2 ** 0.5, 0.2, None, True, True),
    (16, 15, 1, 4, (0, 1, 2, 0), ('1d', 5), ('2d', 6, 6), 2.0, 0.3, 0.4, False, False),
    (11, 10, 2, 4, (-3, -1, 2, 2), None, ('1d', 9), 1.0, 0.2, None, False, True),
    (4, 4, 2, 2, (10, 9, 10, 9), ('1d', 12), ('1d', 12), 2 ** 0.5, 0.2, 0.3, False, True),
]


# Small ones for gradcheck / gradgradcheck (the clamp is active in the first three).
GRADCHECK_CASES = [
    (4, 5, 2, 2, (2, 1, 2, 1), ('1d', 4), ('1d', 4), 1.4, 0.2, 0.6, False, True),
    (4, 4, 2, 2, (3, 2, 3, 2), ('1d', 4), ('2d', 4, 4), 1.4, 0.2, 0.6, False, True),
    (4, 5, 4, 2, (1, 2, 0, 3), ('2d', 5, 6), ('1d', 3), 1.7, 0.1, 0.5, True, True),
    (5, 4, 1, 2, (1, 1, 1, 1), None, ('2d', 3, 3), 1.0, 0.3, None, True, True),
]


def _filter_id(spec) -> str:
    return 'none' if spec is None else spec[0] + 'x'.join(map(str, spec[1:]))


def _case_id(case) -> str:
    h, w, up, down, pad, fu, fd, gain, slope, clamp, flip, bias = case
    return (f'{h}x{w}-up{up}-down{down}-pad{"_".join(map(str, pad))}-fu{_filter_id(fu)}-'
            f'fd{_filter_id(fd)}-g{gain:.2f}-s{slope}-c{clamp}-flip{int(flip)}-b{int(bias)}')


def _inputs(case, dtype=torch.float64, device='cpu', seed=0, n=2, c=3):
    h, w, up, down, pad, fu, fd, gain, slope, clamp, flip, bias = case
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64).to(device, dtype)
    b = torch.randn(c, generator=gen, dtype=torch.float64).to(device, dtype) if bias else None
    kwargs = dict(fu=_filter(fu, gen), fd=_filter(fd, gen), up=up, down=down, padding=pad,
                  gain=gain, slope=slope, clamp=clamp, flip_filter=flip)
    return x, b, kwargs


# ----------------------------------------------------------------------- the kernel on the CPU

class HostKernel:
    """The extension's interface over the CPU build of the kernel's per-block code (float64;
    a small tile so that most cases span several tiles)."""

    def __init__(self, lib: ctypes.CDLL, max_tile: int = 4, smem_limit: int = 48 * 1024):
        self.lib, self.max_tile, self.smem_limit = lib, max_tile, smem_limit
        self.plans: list[tuple[int, int, int]] = []

    def _run(self, ints, reals, tensors):
        ptr = [ctypes.c_void_p(t.data_ptr()) if t is not None and t.numel() else None
               for t in tensors]
        plan = (ctypes.c_int64 * 3)()
        rc = self.lib.flrelu_host_run((ctypes.c_int64 * 24)(*ints),
                                      (ctypes.c_double * 8)(*reals), *ptr, plan)
        return rc, tuple(plan)

    @staticmethod
    def _shape(f):
        return (int(f.shape[0]), int(f.shape[-1]), int(f.ndim == 1))

    def filtered_lrelu(self, x, fu, fd, bias, mask_in, up, down, pu_x, pu_y, qd_x, qd_y, mid_h,
                       mid_w, out_h, out_w, up_gain, mode, gain, slope, clamp, mult,
                       write_mask):
        n, c, h, w = x.shape
        xd = x.detach().to(torch.float64).contiguous()
        bd = bias.detach().to(torch.float64).contiguous() if bias.numel() else None
        y = torch.full([n, c, out_h, out_w], float('nan'), dtype=torch.float64)
        record = write_mask and mode == 0
        mask_out = torch.zeros([n, c, mid_h, mid_w] if record else [0], dtype=torch.uint8)
        ints = [n * c, c, h, w, mid_h, mid_w, out_h, out_w, up, down, *self._shape(fu),
                *self._shape(fd), pu_x, pu_y, qd_x, qd_y, mode, self.max_tile, self.smem_limit,
                8]
        tensors = [xd, bd, fu.to(torch.float64).contiguous(), fd.to(torch.float64).contiguous(),
                   mask_in.contiguous() if mode == 1 else None, mask_out if record else None, y]
        rc, plan = self._run(ints, [up_gain, gain, slope, clamp, *mult], tensors)
        assert rc == 0, 'no tile fits'
        self.plans.append(plan)
        return [y.to(x.dtype), mask_out]

    def tile_plan(self, fu_h, fu_w, fu_sep, fd_h, fd_w, fd_sep, up, down, out_h, out_w,
                  elem_size):
        ints = [0, 1, 1, 1, 1, 1, out_h, out_w, up, down, fu_h, fu_w, int(fu_sep), fd_h, fd_w,
                int(fd_sep), 0, 0, 0, 0, 0, 32, 48 * 1024, elem_size]
        rc, plan = self._run(ints, [1, 1, 1, -1, 0, 0, 0, 0], [None] * 7)
        return (0, 0, 0) if rc else (plan[0], plan[1], plan[2] * elem_size)


@pytest.fixture(scope='module')
def host_lib(tmp_path_factory) -> ctypes.CDLL:
    compiler = shutil.which('c++') or shutil.which('g++') or shutil.which('clang++')
    if compiler is None:
        pytest.skip('no C++ compiler to build the kernel code for the CPU')
    out = tmp_path_factory.mktemp('flrelu') / 'flrelu_host.so'
    cmd = [compiler, '-O1', '-std=c++17', '-shared', '-fPIC', '-Wall', '-Wextra', '-Werror',
           f'-I{CUDA_DIR}', str(NATIVE), '-o', str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lib = ctypes.CDLL(str(out))
    lib.flrelu_host_run.restype = ctypes.c_int
    lib.flrelu_host_run.argtypes = [ctypes.POINTER(ctypes.c_int64),
                                    ctypes.POINTER(ctypes.c_double)] + [ctypes.c_void_p] * 7 + [
        ctypes.POINTER(ctypes.c_int64)]
    return lib


@pytest.fixture
def host_kernel(host_lib, monkeypatch) -> HostKernel:
    kernel = HostKernel(host_lib)
    monkeypatch.setattr(filtered_lrelu_cuda._EXTENSION, 'module', lambda: kernel)
    filtered_lrelu_cuda._fits.cache_clear()
    yield kernel
    filtered_lrelu_cuda._fits.cache_clear()


@pytest.mark.parametrize('case', CASES, ids=_case_id)
def test_host_kernel_matches_the_reference(case, host_kernel):
    x, b, kw = _inputs(case)
    ref = filtered_lrelu_reference(x, b=b, **kw)
    for max_tile in (4, 32):  # several tiles per image, then (mostly) one
        host_kernel.max_tile = max_tile
        got = filtered_lrelu_cuda.filtered_lrelu(x, b=b, **kw)
        assert got.shape == ref.shape
        torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    tiles = {plan[:2] for plan in host_kernel.plans}
    assert len(tiles) == 2 or max(ref.shape[2:]) <= 4  # both tile sizes were exercised
    if kw['clamp'] is not None:  # the cases are ones where the clamp matters
        assert not torch.allclose(ref, filtered_lrelu_reference(x, b=b, **{**kw, 'clamp': None}))


@pytest.mark.parametrize('case', CASES, ids=_case_id)
def test_host_kernel_gradients_match_the_reference(case, host_kernel):
    x, b, kw = _inputs(case, seed=1)
    x.requires_grad_(True)
    params = [x] if b is None else [x, b.requires_grad_(True)]
    weight = torch.randn(filtered_lrelu_reference(x, b=b, **kw).shape, dtype=torch.float64,
                         generator=torch.Generator().manual_seed(2))
    results = []
    for op in (filtered_lrelu_cuda.filtered_lrelu, filtered_lrelu_reference):
        y = op(x, b=b, **kw)
        grads = torch.autograd.grad((y * weight).sum() + y.square().sum(), params,
                                    create_graph=True)
        second = torch.autograd.grad(sum(g.sin().sum() for g in grads), params)
        results.append([g.detach() for g in grads] + list(second))
    for got, ref in zip(*results):
        torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)


def test_the_self_check_passes_the_kernel_code_and_catches_a_wrong_kernel(host_kernel,
                                                                          monkeypatch):
    """The check the extension runs once after loading (on a GPU), here on the kernel's code
    compiled for the CPU: it passes, and a kernel whose masked (backward) pass is off fails."""
    assert filtered_lrelu_cuda.self_check('cpu') is None
    run = host_kernel.filtered_lrelu

    def off(*args):
        y, mask = run(*args)
        return [y * 1.001 if args[16] == filtered_lrelu_cuda.MODE_MASKED else y, mask]

    monkeypatch.setattr(host_kernel, 'filtered_lrelu', off)
    assert filtered_lrelu_cuda.self_check('cpu').startswith('gradient 0 differs')


@pytest.mark.parametrize('case', GRADCHECK_CASES, ids=_case_id)
def test_host_kernel_gradcheck(case, host_kernel):
    x, b, kw = _inputs(case, seed=3, n=1, c=2)
    x.requires_grad_(True)
    b.requires_grad_(True)

    def op(x, b):
        return filtered_lrelu_cuda.filtered_lrelu(x, b=b, **kw)

    if kw['clamp'] is not None:  # the clamp's zero derivative is part of what is checked
        assert not torch.allclose(op(x, b), filtered_lrelu_reference(x, b=b, **{
            **kw, 'clamp': None}))

    assert torch.autograd.gradcheck(op, (x, b))
    assert torch.autograd.gradgradcheck(op, (x, b))


def test_host_kernel_records_no_mask_without_gradients(host_kernel, monkeypatch):
    x, b, kw = _inputs(CASES[0])
    seen = []
    run = host_kernel.filtered_lrelu
    monkeypatch.setattr(host_kernel, 'filtered_lrelu',
                        lambda *a, **k: seen.append(a[-1]) or run(*a, **k))
    filtered_lrelu_cuda.filtered_lrelu(x, b=b, **kw)
    filtered_lrelu_cuda.filtered_lrelu(x.requires_grad_(True), b=b, **kw)
    assert seen == [False, True]


def test_transposed_geometry_is_the_adjoint(host_kernel):
    # <M x, y> == <x, M^T y> for the masked linear op, in both directions.
    x, b, kw = _inputs(CASES[1], seed=4)
    geom = filtered_lrelu_cuda.forward_geometry(tuple(x.shape[2:]), kw['fu'], kw['fd'],
                                                kw['up'], kw['down'], kw['padding'], False)
    _, mask = geom.run(x, bias=b, act=(1.3, 0.2, 0.7), write_mask=True)
    assert set(mask.unique().tolist()) == {0, 1, 2}
    mult = (0.0, 0.26, 1.3, 0.0)
    y = torch.randn(x.shape[:2] + geom.out_hw, dtype=torch.float64)
    fwd = geom.run(x, mask=mask, mult=mult)[0]
    back = geom.transposed().run(y, mask=mask, mult=mult)[0]
    assert back.shape == x.shape
    torch.testing.assert_close((fwd * y).sum(), (x * back).sum(), rtol=1e-12, atol=0)
    assert geom.transposed().transposed().pu == geom.pu


def test_tile_plan_shrinks_tiles_for_long_filters(host_kernel):
    plan = host_kernel.tile_plan
    assert plan(12, 12, True, 12, 12, True, 2, 2, 64, 64, 4)[:2] == (32, 32)
    assert plan(12, 12, True, 12, 12, True, 2, 2, 5, 9, 4)[:2] == (8, 16)  # no larger than y
    th, tw, smem = plan(12, 12, True, 12, 12, False, 2, 2, 64, 64, 8)  # double: smaller tile
    assert th * tw < 32 * 32 and smem <= 48 * 1024
    assert plan(200, 200, False, 200, 200, False, 1, 1, 8, 8, 8) == (0, 0, 0)
    assert filtered_lrelu_cuda.unsupported(torch.zeros(1, 1, 4, 4), torch.ones(200, 200),
                                           torch.ones(200, 200), 1, 1) is not None
    assert filtered_lrelu_cuda.unsupported(torch.zeros(1, 1, 4, 4), torch.ones(12),
                                           torch.ones(12, 12), 2, 2) is None


# ---------------------------------------------------------------------------------- dispatch

def test_dispatch_without_cuda_tensors_takes_the_reference():
    x, b, kw = _inputs(CASES[0], dtype=torch.float32)
    ref = filtered_lrelu(x, b=b, impl='ref', **kw)
    assert torch.equal(filtered_lrelu(x, b=b, impl='cuda', **kw), ref)
    assert torch.equal(filtered_lrelu(x, b=b, **kw), ref)
    with pytest.raises(ValueError, match='impl'):
        filtered_lrelu(x, b=b, impl='triton', **kw)


@pytest.mark.skipif(CUDA, reason='checks the behaviour without a CUDA device')
def test_without_cuda_the_kernel_reports_why_and_is_never_built():
    assert not filtered_lrelu_cuda.is_available()
    assert filtered_lrelu_cuda.status() == 'reference (no CUDA device)'


def test_geometry_refuses_images_smaller_than_the_filters():
    with pytest.raises(ValueError, match='smaller than the downsampling filter'):
        filtered_lrelu_cuda.forward_geometry((4, 4), torch.ones(12), torch.ones(12), 2, 2,
                                             (0, 0, 0, 0), False)
    with pytest.raises(ValueError, match='floating-point 1-D or 2-D'):
        filtered_lrelu_cuda.forward_geometry((4, 4), torch.ones(2, 2, 2), None, 1, 1,
                                             (0, 0, 0, 0), False)
    geom = filtered_lrelu_cuda.forward_geometry((9, 8), torch.ones(12), None, 2, 2,
                                                (5, 4, 5, 4), False)
    assert geom.mid_hw == (16, 14) and geom.out_hw == (8, 7) and geom.up_gain == 4


def test_op_status_is_reported_by_the_plugin():
    from genforce_stylegan3 import plugin

    status = plugin.genforce_op_status()
    assert set(status) == {'filtered_lrelu'} and isinstance(status['filtered_lrelu'], str)


# --------------------------------------------------------------------------------- the GPU

@needs_cuda
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize('case', CASES, ids=_case_id)
def test_cuda_kernel_matches_the_reference(case, dtype):
    assert filtered_lrelu_cuda.is_available(), filtered_lrelu_cuda.status()
    x, b, kw = _inputs(case, dtype=dtype, device='cuda')
    ref = filtered_lrelu(x.double(), b=None if b is None else b.double(), impl='ref', **kw)
    got = filtered_lrelu(x, b=b, impl='cuda', **kw)
    assert got.dtype == dtype and got.shape == ref.shape
    tol = {torch.float16: 1e-2, torch.float32: 1e-5, torch.float64: 1e-12}[dtype]
    torch.testing.assert_close(got.double(), ref, rtol=tol, atol=tol * ref.abs().max().item())


@needs_cuda
@pytest.mark.parametrize('case', CASES, ids=_case_id)
def test_cuda_kernel_gradients_match_the_reference(case):
    x, b, kw = _inputs(case, device='cuda', seed=1)
    x.requires_grad_(True)
    params = [x] if b is None else [x, b.requires_grad_(True)]
    weight = torch.randn(filtered_lrelu(x, b=b, impl='ref', **kw).shape, dtype=torch.float64,
                         device='cuda')
    results = []
    for impl in ('cuda', 'ref'):
        y = filtered_lrelu(x, b=b, impl=impl, **kw)
        grads = torch.autograd.grad((y * weight).sum() + y.square().sum(), params,
                                    create_graph=True)
        second = torch.autograd.grad(sum(g.sin().sum() for g in grads), params)
        results.append([g.detach() for g in grads] + list(second))
    for got, ref in zip(*results):
        torch.testing.assert_close(got, ref, rtol=1e-9, atol=1e-9)


@needs_cuda
@pytest.mark.parametrize('case', GRADCHECK_CASES, ids=_case_id)
def test_cuda_kernel_gradcheck(case):
    x, b, kw = _inputs(case, device='cuda', seed=3, n=1, c=2)
    x.requires_grad_(True)
    b.requires_grad_(True)

    def op(x, b):
        return filtered_lrelu(x, b=b, impl='cuda', **kw)

    assert torch.autograd.gradcheck(op, (x, b))
    assert torch.autograd.gradgradcheck(op, (x, b))


def _relative_error(got: torch.Tensor, ref: torch.Tensor) -> float:
    # A norm, not a maximum: in low precision a sample whose upsampled value is within rounding
    # of zero may take the other slope; that moves one gradient entry, not the norm.
    return ((got.double() - ref).norm() / ref.norm()).item()


@needs_cuda
@pytest.mark.parametrize('dtype', [torch.float32, torch.float16])
def test_cuda_kernel_low_precision_gradients(dtype):
    x, b, kw = _inputs(CASES[2], device='cuda', seed=5)
    weight = torch.randn(filtered_lrelu(x, b=b, impl='ref', **kw).shape, device='cuda',
                         dtype=torch.float64)
    grads = []
    for impl, dt in (('cuda', dtype), ('ref', torch.float64)):
        xi = x.to(dt).requires_grad_(True)
        bi = b.to(dt).requires_grad_(True)
        y = filtered_lrelu(xi, b=bi, impl=impl, **kw)
        grads.append(torch.autograd.grad((y.double() * weight).sum(), [xi, bi]))
    tol = 2e-2 if dtype == torch.float16 else 1e-5
    for got, ref in zip(*grads):
        assert got.dtype == dtype and _relative_error(got, ref) < tol


@needs_cuda
@pytest.mark.parametrize('radial', [False, True])
def test_cuda_generators_match_the_reference(radial):
    from genforce_stylegan3.networks import Generator

    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                  channel_base=128, channel_max=8, num_layers=4, num_critical=1, margin_size=2,
                  conv_kernel=1 if radial else 3, use_radial_filters=radial,
                  num_fp16_res=0).cuda()
    z = torch.randn(3, 8, device='cuda')
    ws = G.mapping(z, None).detach().requires_grad_(True)
    outputs = []
    for forced in (False, True):  # the kernel, then every op on its reference path
        with reference_ops(forced):
            img = G.synthesis(ws)
            (g,) = torch.autograd.grad((img * torch.linspace(-1, 1, 16, device='cuda')).sum(),
                                       ws)
        outputs.append((img.detach(), g))
    torch.testing.assert_close(outputs[0][0], outputs[1][0], rtol=1e-4, atol=1e-4)
    assert _relative_error(outputs[0][1], outputs[1][1].double()) < 1e-4
    assert filtered_lrelu_cuda.status() == 'cuda'


@needs_cuda
@pytest.mark.parametrize('radial', [False, True])
def test_cuda_mixed_precision_generators_match_float32(radial):
    """The official mixed precision (float16 in the top sampling rates, through the kernel)
    against the same generator in float32: images and gradients within float16 rounding."""
    from genforce_stylegan3.networks import Generator

    torch.manual_seed(0)
    G = Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=64, img_channels=3,
                  channel_base=2048, channel_max=64, num_layers=6, num_critical=2,
                  margin_size=4, conv_kernel=1 if radial else 3, use_radial_filters=radial,
                  num_fp16_res=2).cuda()
    flags = [getattr(G.synthesis, name).use_fp16 for name in G.synthesis.layer_names]
    assert any(flags) and not all(flags)
    ws = G.mapping(torch.randn(4, 16, device='cuda'), None).detach()
    results = []
    for force_fp32 in (False, True):
        w = ws.clone().requires_grad_(True)
        img = G.synthesis(w, force_fp32=force_fp32)
        (g,) = torch.autograd.grad(img.square().sum(), w)
        results.append((img.detach(), g))
    (img16, g16), (img32, g32) = results
    assert img16.dtype == torch.float32 and torch.isfinite(g16).all()
    assert _relative_error(img16, img32.double()) < 1e-2
    assert _relative_error(g16, g32.double()) < 5e-2
