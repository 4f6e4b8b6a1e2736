"""The CUDA ops of the StyleGAN2 plugin against their pure-PyTorch references.

* ``TestEmulated*`` run everywhere: the autograd wiring of ``upfirdn2d_cuda`` / ``bias_act_cuda``
  (adjoint padding, separable passes, second-order terms) driven by a Python transcription of
  the kernels' arithmetic (tap selection, derivative tables), checked against the references.
* ``TestCuda*`` need a CUDA device: the real kernels against the references — values, first and
  second derivatives, fp16.
* ``test_compile_ops`` (slow) compiles the sources with nvcc when it is installed; no GPU needed.
"""
from __future__ import annotations

import importlib.util
import itertools
import math
import shutil
import sys
from pathlib import Path

import pytest
import torch

from genforce_core import ops as core_ops
from genforce_stylegan2.ops import bias_act_cuda, upfirdn2d_cuda
from genforce_stylegan2.ops.bias_act import _bias_act_ref, activation_funcs
from genforce_stylegan2.ops.upfirdn2d import _upfirdn2d_ref

CUDA = torch.cuda.is_available()
_skip_without_cuda = pytest.mark.skipif(not CUDA, reason='needs a CUDA device')


def needs_cuda(obj):
    """Mark ``obj`` as a GPU test, skipped without a CUDA device."""
    return pytest.mark.gpu(_skip_without_cuda(obj))
ACTS = list(bias_act_cuda.ACTIVATIONS)

# (up, down, padding, filter shape, flip_filter, gain)
UPFIRDN_CASES = [
    (1, 1, 0, (4, 4), False, 1.0),
    (2, 1, [2, 1, 2, 1], (4, 4), False, 4.0),
    (1, 2, [1, 1, 1, 1], (4, 4), False, 1.0),
    (2, 2, [1, 2, 0, 3], (4, 4), True, 1.0),
    (1, 1, [-1, 2, 1, -2], (4, 4), False, 0.5),
    (2, 1, [-2, 0, -1, 1], (4, 4), True, 2.0),
    (1, 2, [0, -1, 2, -1], (3, 5), False, 1.0),
    ([2, 1], [1, 2], [1, 0, 2, 1], (4, 2), False, 1.5),
    (1, 1, 0, (1, 1), False, 3.0),
    (2, 2, [0, 1, 1, 0], (1, 1), True, 1.0),
    (1, 1, 2, (7,), False, 1.0),
    (2, 1, [3, 2, 3, 2], (6,), True, 4.0),
    (1, 2, [-1, 2, 0, 1], (5,), False, 1.0),
]


def _case_id(case) -> str:
    up, down, pad, fshape, flip, gain = case
    return f'up{up}-down{down}-pad{pad}-f{"x".join(map(str, fshape))}-flip{int(flip)}-g{gain}'


# ----------------------------------------------------------------------------- kernel emulation

def _first_tap(base: int, up: int) -> int:
    if base >= 0:
        r = base % up
        return 0 if r == 0 else up - r
    return -base


class FakeUpfirdn2dExt:
    """A transcription of upfirdn2d.cu's per-output loop (tap selection included)."""

    @staticmethod
    def upfirdn2d(x, f, upx, upy, downx, downy, padx0, padx1, pady0, pady1, flip, gain):
        n, c, h, w = x.shape
        fh, fw = f.shape
        oh = (h * upy + pady0 + pady1 - fh) // downy + 1
        ow = (w * upx + padx0 + padx1 - fw) // downx + 1
        wt = (f if flip else f.flip([0, 1])).to(torch.float64) * gain
        y = torch.zeros([n, c, oh, ow], dtype=torch.float64)
        for oy in range(oh):
            by = oy * downy - pady0
            for ox in range(ow):
                bx = ox * downx - padx0
                for i in range(_first_tap(by, upy), fh, upy):
                    iy = (by + i) // upy
                    if iy >= h:
                        break
                    for j in range(_first_tap(bx, upx), fw, upx):
                        ix = (bx + j) // upx
                        if ix >= w:
                            break
                        y[:, :, oy, ox] += x[:, :, iy, ix].double() * wt[i, j]
        return y.to(x.dtype)


def _act_table(act: str, z: torch.Tensor, alpha: float, order: int) -> torch.Tensor:
    """The value / first / second derivative table of bias_act.cu, in torch."""
    pos = z > 0
    one, zero = torch.ones_like(z), torch.zeros_like(z)
    s = torch.sigmoid(z)
    lam, a = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717
    if act == 'linear':
        return [z, one, zero][order]
    if act == 'relu':
        return [torch.where(pos, z, zero), pos.to(z.dtype), zero][order]
    if act == 'lrelu':
        return [torch.where(pos, z, z * alpha), torch.where(pos, one, one * alpha), zero][order]
    if act == 'tanh':
        t = torch.tanh(z)
        return [t, 1 - t * t, -2 * t * (1 - t * t)][order]
    if act == 'sigmoid':
        return [s, s * (1 - s), s * (1 - s) * (1 - 2 * s)][order]
    if act == 'elu':
        e = torch.exp(z)
        return [torch.where(pos, z, e - 1), torch.where(pos, one, e), torch.where(pos, zero, e)][
            order]
    if act == 'selu':
        e = torch.exp(z)
        return [torch.where(pos, lam * z, lam * a * (e - 1)), torch.where(pos, lam * one,
                lam * a * e), torch.where(pos, zero, lam * a * e)][order]
    if act == 'softplus':
        big = z > 20
        return [torch.where(big, z, torch.log1p(torch.exp(z))), torch.where(big, one, s),
                torch.where(big, zero, s * (1 - s))][order]
    assert act == 'swish'
    return [z * s, s * (1 + z * (1 - s)), s * (1 - s) * (2 + z * (1 - 2 * s))][order]


class FakeBiasActExt:
    """A transcription of bias_act.cu's three modes."""

    @staticmethod
    def bias_act(x, b, g1, g2, mode, act_id, dim, alpha, gain, clamp):
        act = next(k for k, v in bias_act_cuda.ACTIVATIONS.items() if v[0] == act_id)
        z = x.double()
        if b.numel():
            z = z + b.double().reshape([-1 if i == dim else 1 for i in range(x.ndim)])
        v = _act_table(act, z, alpha, 0) * gain
        if mode == 0:
            out = v.clamp(-clamp, clamp) if clamp >= 0 else v
        else:
            keep = (v.abs() <= clamp) if clamp >= 0 else torch.ones_like(v, dtype=torch.bool)
            d = _act_table(act, z, alpha, mode) * gain * g1.double()
            if mode == 2:
                d = d * g2.double()
            out = torch.where(keep, d, torch.zeros_like(d))
        return out.to(x.dtype)


@pytest.fixture
def emulated(monkeypatch):
    monkeypatch.setattr(upfirdn2d_cuda, '_extension', FakeUpfirdn2dExt)
    monkeypatch.setattr(bias_act_cuda, '_extension', FakeBiasActExt)


def _grads(fn, inputs, create_graph=True):
    """Output, first-order grads and a second-order grad of sum(grad^2) w.r.t. the inputs."""
    torch.manual_seed(1)
    y = fn(*inputs)
    dy = torch.randn_like(y)
    g = torch.autograd.grad(y, inputs, dy, create_graph=create_graph)
    penalty = sum((gi.double() ** 2).sum() for gi in g if gi is not None)
    gg = torch.autograd.grad(penalty, inputs, allow_unused=True) if penalty.requires_grad else \
        [None] * len(inputs)
    return y, g, gg


def _assert_close_tree(a, b, atol, rtol=1e-4):
    for u, v in zip(a, b):
        if u is None or v is None:
            # A missing gradient must be a zero one on the other side.
            w = u if v is None else v
            assert w is None or float(w.abs().max()) <= atol
            continue
        torch.testing.assert_close(u, v, atol=atol, rtol=rtol)


def _upfirdn_inputs(case, device, dtype=torch.float64):
    up, down, pad, fshape, flip, gain = case
    g = torch.Generator().manual_seed(0)
    x = torch.randn([2, 3, 7, 6], generator=g, dtype=torch.float64).to(device, dtype)
    f = torch.randn(fshape, generator=g, dtype=torch.float32).to(device)
    return x.requires_grad_(True), f


class TestEmulatedUpfirdn2d:
    @pytest.mark.parametrize('case', UPFIRDN_CASES, ids=_case_id)
    def test_matches_reference(self, emulated, case):
        up, down, pad, _, flip, gain = case
        x, f = _upfirdn_inputs(case, 'cpu')
        kw = dict(up=up, down=down, padding=pad, flip_filter=flip, gain=gain)
        ours = _grads(lambda t: upfirdn2d_cuda.upfirdn2d(t, f, **kw), [x])
        ref = _grads(lambda t: _upfirdn2d_ref(t, f, **kw), [x])
        assert ours[0].shape == ref[0].shape
        # The reference scales the float32 filter by the gain in float32: ~1e-7 differences.
        torch.testing.assert_close(ours[0], ref[0], atol=1e-6, rtol=1e-5)
        _assert_close_tree(ours[1], ref[1], atol=1e-6)
        # Linear op: the second-order grad of sum(grad^2) is exercised through the same Function.
        _assert_close_tree(ours[2], ref[2], atol=1e-5)

    def test_none_filter_is_identity(self, emulated):
        x = torch.randn(1, 2, 4, 5, dtype=torch.float64)
        torch.testing.assert_close(upfirdn2d_cuda.upfirdn2d(x, None), x)


class TestEmulatedBiasAct:
    @pytest.mark.parametrize('act', ACTS)
    @pytest.mark.parametrize('bias,clamp', [(True, None), (False, None), (True, 0.5)])
    def test_matches_reference(self, emulated, act, bias, clamp):
        g = torch.Generator().manual_seed(0)
        x = (torch.randn([3, 5, 4], generator=g, dtype=torch.float64) * 2).requires_grad_(True)
        b = (torch.randn([5], generator=g, dtype=torch.float64)).requires_grad_(True)
        inputs = [x, b] if bias else [x]
        kw = dict(dim=1, act=act, clamp=clamp)

        def run(op):
            return lambda *t: op(t[0], t[1] if bias else None, **kw)

        ours = _grads(run(bias_act_cuda.bias_act), inputs)
        ref = _grads(run(_bias_act_ref), inputs)
        torch.testing.assert_close(ours[0], ref[0], atol=1e-10, rtol=1e-7)
        _assert_close_tree(ours[1], ref[1], atol=1e-9)
        _assert_close_tree(ours[2], ref[2], atol=1e-8)

    def test_defaults_match_reference_table(self):
        for act, (_, alpha, gain, _) in bias_act_cuda.ACTIVATIONS.items():
            spec = activation_funcs[act]
            assert (alpha, gain) == pytest.approx((spec.def_alpha, spec.def_gain)), act
        assert set(bias_act_cuda.ACTIVATIONS) == set(activation_funcs)

    def test_negative_dim_and_alpha_gain(self, emulated):
        x = torch.randn(2, 3, 4, dtype=torch.float64)
        b = torch.randn(4, dtype=torch.float64)
        ours = bias_act_cuda.bias_act(x, b, dim=-1, act='lrelu', alpha=0.1, gain=0.7, clamp=0.8)
        ref = _bias_act_ref(x, b, dim=-1, act='lrelu', alpha=0.1, gain=0.7, clamp=0.8)
        torch.testing.assert_close(ours, ref)


def test_the_self_checks_pass_the_kernels_math_and_catch_a_wrong_kernel(emulated, monkeypatch):
    """The checks each CUDA extension runs once after loading (on a GPU), here on the CPU
    transcriptions of the kernels: they pass, and a kernel off by a little fails them."""
    assert upfirdn2d_cuda.self_check('cpu') is None
    assert bias_act_cuda.self_check('cpu') is None

    class Off:
        @staticmethod
        def upfirdn2d(*args):
            return FakeUpfirdn2dExt.upfirdn2d(*args) * 1.001

        @staticmethod
        def bias_act(x, b, g1, g2, mode, *args):
            out = FakeBiasActExt.bias_act(x, b, g1, g2, mode, *args)
            return out * 1.001 if mode else out  # only the gradient is wrong

    monkeypatch.setattr(upfirdn2d_cuda, '_extension', Off)
    monkeypatch.setattr(bias_act_cuda, '_extension', Off)
    assert upfirdn2d_cuda.self_check('cpu').startswith('output differs')
    assert bias_act_cuda.self_check('cpu').startswith('gradient 0 differs')


def test_status_is_cheap_and_known():
    for module in (upfirdn2d_cuda, bias_act_cuda):
        s = module.status()
        assert s == 'cuda' or s.startswith('reference (') or s == 'not built yet'
        if not CUDA:
            assert s.startswith('reference (')
            assert module.is_available() is False


def test_sources_ship_as_package_data():
    text = (Path(__file__).resolve().parents[1] / 'pyproject.toml').read_text()
    for pattern in ('ops/cuda/*.cu', 'ops/cuda/*.cpp', 'ops/cuda/*.h'):
        assert pattern in text
    for src in upfirdn2d_cuda.SOURCES + bias_act_cuda.SOURCES:
        assert src.is_file()


# ------------------------------------------------------------------------------- real kernels

@pytest.fixture(autouse=True)
def _no_tf32():
    """The reference's conv2d would use TF32 on Ampere+ and miss the 1e-5 tolerance."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@needs_cuda
class TestCudaUpfirdn2d:
    @pytest.mark.parametrize('case', UPFIRDN_CASES, ids=_case_id)
    def test_values_and_grads_fp32(self, case):
        assert upfirdn2d_cuda.is_available(), upfirdn2d_cuda.status()
        up, down, pad, _, flip, gain = case
        x, f = _upfirdn_inputs(case, 'cuda', torch.float32)
        kw = dict(up=up, down=down, padding=pad, flip_filter=flip, gain=gain)
        ours = _grads(lambda t: upfirdn2d_cuda.upfirdn2d(t, f, **kw), [x])
        ref = _grads(lambda t: _upfirdn2d_ref(t, f, **kw), [x])
        torch.testing.assert_close(ours[0], ref[0], atol=1e-5, rtol=1e-5)
        _assert_close_tree(ours[1], ref[1], atol=1e-5)
        _assert_close_tree(ours[2], ref[2], atol=1e-4)

    @pytest.mark.parametrize('case', UPFIRDN_CASES, ids=_case_id)
    def test_gradcheck_fp64(self, case):
        up, down, pad, _, flip, gain = case
        x, f = _upfirdn_inputs(case, 'cuda')
        fn = lambda t: upfirdn2d_cuda.upfirdn2d(t, f, up, down, pad, flip, gain)  # noqa: E731
        assert torch.autograd.gradcheck(fn, [x])
        assert torch.autograd.gradgradcheck(fn, [x])

    @pytest.mark.parametrize('case', UPFIRDN_CASES[:6], ids=_case_id)
    @pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
    def test_low_precision_values(self, case, dtype):
        up, down, pad, _, flip, gain = case
        x, f = _upfirdn_inputs(case, 'cuda', torch.float32)
        kw = dict(up=up, down=down, padding=pad, flip_filter=flip, gain=gain)
        ours = upfirdn2d_cuda.upfirdn2d(x.detach().to(dtype), f, **kw)
        assert ours.dtype == dtype
        ref = _upfirdn2d_ref(x.detach().to(dtype).float(), f, **kw)
        tol = 1e-2 if dtype == torch.float16 else 5e-2
        torch.testing.assert_close(ours.float(), ref, atol=tol * max(1.0, gain), rtol=tol)

    def test_large_and_noncontiguous(self):
        x = torch.randn(4, 16, 64, 64, device='cuda').transpose(2, 3)
        f = torch.tensor([1., 3., 3., 1.], device='cuda')
        f = torch.outer(f, f) / 64
        ours = upfirdn2d_cuda.upfirdn2d(x, f, up=2, padding=[2, 1, 2, 1], gain=4)
        ref = _upfirdn2d_ref(x, f, up=2, padding=[2, 1, 2, 1], gain=4)
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)

    def test_dispatch_uses_cuda(self):
        from genforce_stylegan2.ops.upfirdn2d import upfirdn2d
        x = torch.randn(1, 2, 8, 8, device='cuda')
        f = torch.ones(4, 4, device='cuda') / 16
        torch.testing.assert_close(upfirdn2d(x, f, padding=1), _upfirdn2d_ref(x, f, padding=1),
                                   atol=1e-5, rtol=1e-5)
        assert upfirdn2d_cuda.status() == 'cuda'


@needs_cuda
class TestCudaBiasAct:
    @pytest.mark.parametrize('act', ACTS)
    @pytest.mark.parametrize('bias,clamp', [(True, None), (False, None), (True, 0.5),
                                            (False, 256.0)])
    def test_values_and_grads_fp32(self, act, bias, clamp):
        assert bias_act_cuda.is_available(), bias_act_cuda.status()
        g = torch.Generator().manual_seed(0)
        x = (torch.randn([4, 8, 5, 3], generator=g) * 2).cuda().requires_grad_(True)
        b = torch.randn([8], generator=g).cuda().requires_grad_(True)
        inputs = [x, b] if bias else [x]
        kw = dict(dim=1, act=act, clamp=clamp)

        def run(op):
            return lambda *t: op(t[0], t[1] if bias else None, **kw)

        ours = _grads(run(bias_act_cuda.bias_act), inputs)
        ref = _grads(run(_bias_act_ref), inputs)
        torch.testing.assert_close(ours[0], ref[0], atol=1e-5, rtol=1e-5)
        _assert_close_tree(ours[1], ref[1], atol=1e-5)
        _assert_close_tree(ours[2], ref[2], atol=1e-4)

    @pytest.mark.parametrize('act', ACTS)
    def test_gradcheck_fp64(self, act):
        x = torch.randn(3, 4, 5, device='cuda', dtype=torch.float64).requires_grad_(True)
        b = torch.randn(4, device='cuda', dtype=torch.float64).requires_grad_(True)
        fn = lambda t, c: bias_act_cuda.bias_act(t, c, dim=1, act=act, clamp=1.5)  # noqa: E731
        assert torch.autograd.gradcheck(fn, [x, b])
        assert torch.autograd.gradgradcheck(fn, [x, b])

    @pytest.mark.parametrize('act', ACTS)
    @pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
    def test_low_precision_values(self, act, dtype):
        x = torch.randn(4, 8, 16, 16, device='cuda').to(dtype)
        b = torch.randn(8, device='cuda').to(dtype)
        ours = bias_act_cuda.bias_act(x, b, act=act, clamp=256)
        assert ours.dtype == dtype
        ref = _bias_act_ref(x.float(), b.float(), act=act, clamp=256)
        tol = 1e-2 if dtype == torch.float16 else 5e-2
        torch.testing.assert_close(ours.float(), ref, atol=tol, rtol=tol)

    def test_dim_and_dispatch(self):
        from genforce_stylegan2.ops.bias_act import bias_act
        x = torch.randn(6, 7, 3, device='cuda')
        b = torch.randn(3, device='cuda')
        torch.testing.assert_close(bias_act(x, b, dim=2, act='lrelu', alpha=0.1, gain=0.5),
                                   _bias_act_ref(x, b, dim=2, act='lrelu', alpha=0.1, gain=0.5))
        assert bias_act_cuda.status() == 'cuda'


# ------------------------------------------------------------------------------------- compile

def _load_compile_ops():
    path = Path(__file__).resolve().parents[3] / 'tools' / 'compile_ops.py'
    if not path.is_file():
        pytest.skip('tools/compile_ops.py is not part of this checkout')
    spec = importlib.util.spec_from_file_location('_genforce_tools_compile_ops', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_compile_ops():
    """nvcc compiles (and links) both ops; minutes on 2 cores, no GPU needed. The build goes
    into the shared cache ($GENFORCE_OPS_CACHE), keyed by a hash of the sources and flags, so
    after `tools/compile_ops.py` (the test command's compile step) this only checks and loads
    what that step built from these very sources."""
    if shutil.which('nvcc') is None and core_ops.toolchain_problem() is not None:
        pytest.skip('nvcc not installed')
    problem = core_ops.toolchain_problem()
    if problem:
        pytest.skip(problem)
    tool = _load_compile_ops()
    ops = [op for op in tool.discover_ops() if op.extension.startswith('genforce_stylegan2_')]
    assert {op.extension for op in ops} == {upfirdn2d_cuda.EXTENSION, bias_act_cuda.EXTENSION}
    assert tool.compile_ops(ops, arch='8.0') == 0
    for ext in (upfirdn2d_cuda.EXTENSION, bias_act_cuda.EXTENSION):
        op = next(op for op in ops if op.extension == ext)
        directory = core_ops.compile_only(ext, op.sources, arch_list='8.0')  # cached: no-op
        built = list(directory.glob(f'{ext}*.so'))
        assert built, f'no shared library for {ext} in {directory}'
        # Importing needs no GPU either (only torch's CUDA libraries): it proves the link.
        spec = importlib.util.spec_from_file_location(ext, built[0])
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert hasattr(module, 'upfirdn2d' if 'upfirdn2d' in ext else 'bias_act')


def test_act_table_sanity():
    # The emulator's derivative table against finite differences (guards the emulator itself).
    z = torch.linspace(-3, 3, 61, dtype=torch.float64)
    z = z[(z.abs() > 1e-3)]
    eps = 1e-6
    for act, order in itertools.product(ACTS, (1, 2)):
        alpha = bias_act_cuda.ACTIVATIONS[act][1]
        num = (_act_table(act, z + eps, alpha, order - 1) -
               _act_table(act, z - eps, alpha, order - 1)) / (2 * eps)
        torch.testing.assert_close(_act_table(act, z, alpha, order), num, atol=1e-5, rtol=1e-5,
                                   msg=f'{act} order {order}')
    assert math.isfinite(float(_act_table('softplus', torch.tensor(50.0), 0.0, 0)))
