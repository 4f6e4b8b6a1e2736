"""The core's JIT-build helper (genforce_core.ops): hashing, stale locks, status, warnings.

Everything here runs on CPU and never invokes a compiler: builds are replaced by fakes.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import types
import warnings

import pytest
import torch

from genforce_core import ops
from genforce_core.cuda_extension import CudaExtension, kernel_mismatch


@pytest.fixture(autouse=True)
def _clean(tmp_path, monkeypatch):
    monkeypatch.setenv('GENFORCE_OPS_CACHE', str(tmp_path / 'cache'))
    monkeypatch.delenv('GENFORCE_OPS_STALE_LOCK_MINUTES', raising=False)
    ops.reset()
    yield
    ops.reset()


@pytest.fixture
def sources(tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    (src / 'op.cu').write_text('// kernel v1\n')
    (src / 'op_bindings.cpp').write_text('// bindings\n')
    (src / 'op.h').write_text('// header\n')
    return [src / 'op_bindings.cpp', src / 'op.cu']


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


# ------------------------------------------------------------------------------------- hashing

def test_hash_is_stable_and_covers_sources_headers_and_flags(sources):
    base = ops.source_hash(sources)
    assert base == ops.source_hash(sources)
    assert len(base) == 16

    assert ops.source_hash(sources, extra_cuda_cflags=['-O3']) != base
    assert ops.source_hash(sources, extra_cflags=['-DX']) != base

    sources[1].write_text('// kernel v2\n')
    changed = ops.source_hash(sources)
    assert changed != base

    (sources[0].parent / 'op.h').write_text('// header v2\n')
    assert ops.source_hash(sources) != changed  # headers beside the sources count too


def test_hash_covers_arch_list(sources, monkeypatch):
    monkeypatch.setenv('TORCH_CUDA_ARCH_LIST', '8.0')
    a = ops.source_hash(sources)
    monkeypatch.setenv('TORCH_CUDA_ARCH_LIST', '9.0')
    assert ops.source_hash(sources) != a


def test_build_dir_lives_in_the_cache(tmp_path, sources):
    digest = ops.source_hash(sources)
    assert ops.build_dir('myop', digest) == tmp_path / 'cache' / f'myop-{digest}'
    assert ops.cache_root() == tmp_path / 'cache'


def test_default_cache_root(monkeypatch, tmp_path):
    monkeypatch.delenv('GENFORCE_OPS_CACHE')
    monkeypatch.setenv('HOME', str(tmp_path))
    assert ops.cache_root() == tmp_path / '.cache' / 'genforce' / 'ops'


# ------------------------------------------------------------------------------------- locking

def _write_lock(directory, pid, host=None, age_minutes=0.0):
    import socket
    directory.mkdir(parents=True, exist_ok=True)
    lock = directory / ops.LOCK_NAME
    lock.write_text(f'{pid} {host or socket.gethostname()} 0\n')
    if age_minutes:
        old = time.time() - age_minutes * 60
        os.utime(lock, (old, old))
    return lock


def test_lock_held_by_dead_pid_is_removed(tmp_path):
    d = tmp_path / 'build'
    _write_lock(d, _dead_pid())
    with pytest.warns(ops.GenforceOpsWarning, match='owner .* is dead'):
        with ops.acquire_build_lock(d, poll_seconds=0.01) as lock:
            assert lock.read_text().split()[0] == str(os.getpid())
    assert not (d / ops.LOCK_NAME).exists()


def test_old_lock_is_removed(tmp_path):
    d = tmp_path / 'build'
    # A live pid on another host: only the age can tell it is stale.
    _write_lock(d, os.getpid(), host='elsewhere', age_minutes=11)
    with pytest.warns(ops.GenforceOpsWarning, match='not refreshed for 11'):
        with ops.acquire_build_lock(d, poll_seconds=0.01):
            pass


def test_stale_age_is_configurable(tmp_path, monkeypatch):
    d = tmp_path / 'build'
    _write_lock(d, os.getpid(), host='elsewhere', age_minutes=3)
    monkeypatch.setenv('GENFORCE_OPS_STALE_LOCK_MINUTES', '2')
    with pytest.warns(ops.GenforceOpsWarning, match='limit 2 min'):
        with ops.acquire_build_lock(d, poll_seconds=0.01):
            pass
    _write_lock(d, os.getpid(), host='elsewhere', age_minutes=3)
    with pytest.warns(ops.GenforceOpsWarning, match='limit 1 min'):
        with ops.acquire_build_lock(d, stale_minutes=1, poll_seconds=0.01):
            pass


def test_live_fresh_lock_is_waited_for(tmp_path):
    d = tmp_path / 'build'
    lock = _write_lock(d, os.getpid())  # alive, same host, fresh: a real build in progress
    acquired = threading.Event()

    def take():
        with ops.acquire_build_lock(d, poll_seconds=0.01):
            acquired.set()

    with warnings.catch_warnings():
        warnings.simplefilter('error')  # nothing may be declared stale
        t = threading.Thread(target=take)
        t.start()
        time.sleep(0.3)
        assert not acquired.is_set()
        lock.unlink()  # the other builder finishes
        t.join(timeout=10)
    assert acquired.is_set()


def test_leftover_torch_baton_lock_is_removed(tmp_path, monkeypatch):
    d = tmp_path / 'build'
    d.mkdir()
    (d / 'lock').write_text('')
    monkeypatch.setattr(ops, '_torch_uses_baton', lambda: True)
    with pytest.warns(ops.GenforceOpsWarning, match='killed torch build'):
        with ops.acquire_build_lock(d):
            assert not (d / 'lock').exists()


def test_torch_filelock_file_is_left_alone(tmp_path, monkeypatch):
    d = tmp_path / 'build'
    d.mkdir()
    (d / 'lock').write_text('')
    monkeypatch.setattr(ops, '_torch_uses_baton', lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        with ops.acquire_build_lock(d):
            pass
    assert (d / 'lock').exists()


# ------------------------------------------------------------------------- load / status / warn

def test_no_cuda_device_means_reference(sources, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(ops, '_build', lambda *a, **k: pytest.fail('must not build'))
    assert ops.op_status('myop') == 'reference (no CUDA device)'
    assert ops.load_extension('myop', sources) is None
    assert ops.op_status('myop') == 'reference (no CUDA device)'


def _pretend_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 0)
    monkeypatch.setattr(ops, 'toolchain_problem', lambda: None)
    monkeypatch.setattr(ops, '_nvcc_path', lambda: '/usr/bin/nvcc')


def test_not_built_yet_is_cheap(monkeypatch):
    _pretend_gpu(monkeypatch)
    monkeypatch.setattr(ops, '_build', lambda *a, **k: pytest.fail('op_status must not build'))
    assert ops.op_status('myop') == 'not built yet'


def test_missing_nvcc_is_reported(sources, monkeypatch):
    _pretend_gpu(monkeypatch)
    monkeypatch.setattr(ops, 'toolchain_problem', lambda: 'nvcc not found: install it')
    assert ops.load_extension('myop', sources) is None
    assert ops.op_status('myop') == 'reference (nvcc not found: install it)'


def test_build_failure_is_cached_and_summarised(sources, monkeypatch):
    _pretend_gpu(monkeypatch)
    calls = []

    def failing_build(*args, **kwargs):
        calls.append(args)
        raise RuntimeError("Error building extension 'myop': [1/2] nvcc ...\n"
                           "op.cu(3): error: identifier \"foo\" is undefined\n"
                           'ninja: build stopped: subcommand failed.')

    monkeypatch.setattr(ops, '_build', failing_build)
    assert ops.load_extension('myop', sources) is None
    assert ops.load_extension('myop', sources) is None  # no second attempt in this process
    assert len(calls) == 1
    assert ops.op_status('myop') == \
        'reference (build failed: op.cu(3): error: identifier "foo" is undefined)'
    assert 'ninja: build stopped' in ops.build_log('myop')


def test_changed_sources_rebuild_and_success_is_cached(sources, monkeypatch):
    _pretend_gpu(monkeypatch)
    built = []

    def fake_build(name, paths, digest, *args):
        built.append(digest)
        return types.ModuleType(name)

    monkeypatch.setattr(ops, '_build', fake_build)
    module = ops.load_extension('myop', sources)
    assert isinstance(module, types.ModuleType)
    assert ops.load_extension('myop', sources) is module
    assert ops.op_status('myop') == 'cuda'
    sources[1].write_text('// kernel v2\n')
    ops.load_extension('myop', sources)
    assert len(built) == 2 and built[0] != built[1]


def test_load_extension_never_raises(tmp_path, monkeypatch):
    _pretend_gpu(monkeypatch)
    assert ops.load_extension('myop', [tmp_path / 'missing.cu']) is None
    assert ops.op_status('myop').startswith('reference (build failed:')


def test_warn_reference_once():
    with pytest.warns(ops.GenforceOpsWarning, match=r'upfirdn2d uses the reference PyTorch '
                      r'implementation \(no CUDA device\)'):
        ops.warn_reference_once('upfirdn2d', 'no CUDA device')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        ops.warn_reference_once('upfirdn2d', 'no CUDA device')
        ops.warn_reference_once('upfirdn2d', 'another reason')
    assert caught == []
    with pytest.warns(ops.GenforceOpsWarning, match='bias_act'):
        ops.warn_reference_once('bias_act', 'build failed: x')


def test_compile_only_needs_a_toolchain(sources, monkeypatch):
    monkeypatch.setattr(ops, 'toolchain_problem', lambda: 'nvcc not found')
    with pytest.raises(ops.BuildError, match='nvcc not found'):
        ops.compile_only('myop', sources)


def test_link_failure_summary_names_the_missing_library(sources, monkeypatch):
    _pretend_gpu(monkeypatch)
    log = ('[3/3] c++ a.o b.cuda.o -shared -lc10 -lcudart -o myop.so\nFAILED: [code=1] myop.so\n'
           'c++ a.o b.cuda.o -shared -lc10 -lcudart -o myop.so\n'
           '/usr/bin/ld: cannot find -lcudart: No such file or directory\n'
           'collect2: error: ld returned 1 exit status\nninja: build stopped: subcommand failed.')

    def failing_build(*args, **kwargs):
        raise RuntimeError(f"Error building extension 'myop': {log}")

    monkeypatch.setattr(ops, '_build', failing_build)
    ops.load_extension('myop', sources)
    assert ops.op_status('myop') == \
        'reference (build failed: /usr/bin/ld: cannot find -lcudart: No such file or directory)'


# ------------------------------------------------------------------------------- self-check

def _extension_that_builds(monkeypatch, sources, check):
    _pretend_gpu(monkeypatch)
    monkeypatch.setattr(ops, '_build', lambda name, *args: types.ModuleType(name))
    return CudaExtension('checked', sources, self_check=check)


def test_a_kernel_passing_its_self_check_is_used_and_checked_once(sources, monkeypatch):
    calls = []

    def check():
        calls.append(ext.module())  # the kernel is already usable inside the check
        return None

    ext = _extension_that_builds(monkeypatch, sources, check)
    module = ext.module()
    assert isinstance(module, types.ModuleType) and calls == [module]
    assert ext.module() is module and len(calls) == 1
    assert ext.status() == 'cuda'


@pytest.mark.parametrize('context', [
    torch.no_grad, torch.inference_mode,
    lambda: torch.autocast('cpu', dtype=torch.bfloat16)])  # AMP: a bfloat16 matmul fails
def test_the_self_check_runs_as_written_whatever_the_context_of_the_first_use(
        sources, monkeypatch, context):
    def check():
        x = torch.randn(3, 8, requires_grad=True)
        return kernel_mismatch(lambda x: x @ x.T, lambda x: (x.double() @ x.double().T),
                                   [x], tolerance=1e-5)

    ext = _extension_that_builds(monkeypatch, sources, check)
    with context():
        assert ext.module() is not None
    assert ext.status() == 'cuda'


@pytest.mark.parametrize('check, reason', [
    (lambda: 'output differs from the reference by 0.5 (relative)',
     'self-check failed: output differs from the reference by 0.5 (relative)'),
    (lambda: 1 / 0, 'self-check failed: ZeroDivisionError: division by zero'),
])
def test_a_kernel_failing_its_self_check_is_never_used(sources, monkeypatch, check, reason):
    ext = _extension_that_builds(monkeypatch, sources, check)
    assert ext.module() is None and ext.module() is None
    assert not ext.is_available()
    assert ext.status() == f'reference ({reason})'


def test_kernel_mismatch_compares_values_and_gradients():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, dtype=torch.float64)  # a constant: no gradient is compared for it
    assert kernel_mismatch(lambda x, w: (x * w).tanh(), lambda x, w: torch.tanh(x * w),
                               [x, w]) is None
    assert kernel_mismatch(lambda x, w: x * w + 1e-3, lambda x, w: x * w,
                               [x, w]).startswith('output differs from the reference by')
    # Same values, wrong backward: the gradient check catches it.
    wrong_grad = lambda x, w: x.detach() * w + (x - x.detach()) * 2  # noqa: E731
    assert kernel_mismatch(wrong_grad, lambda x, w: x * w, [x, w]).startswith(
        'gradient 0 differs')
    assert 'shape [3, 3]' in kernel_mismatch(lambda x, w: x[:, :3], lambda x, w: x, [x, w])
    assert 'differs' in kernel_mismatch(lambda x, w: x * float('nan'), lambda x, w: x,
                                            [x, w])
