"""Hostile Inception weight files: pickled code, decompression bombs, torch's unsafe advice.

Every file is built here. A pickled ``os.system('touch MARKER')`` proves by the missing
marker that nothing ran; every refusal must be an InceptionWeightsError that names the file
and never repeats torch's advice to load with ``weights_only=False``.
"""
from __future__ import annotations

import io
import os
import pickle
import struct
import warnings
import zipfile

import pytest
import torch

from genforce_core.weight_files import MAX_BYTES_ENV
from genforce_metrics_fid import weights as W

BIG_ZEROS = 256 << 20  # what the bomb inflates to


class _RunsShell:
    """Pickles (protocol 4: STACK_GLOBAL) as ``os.system(command)``."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def system_pickle(marker, protocol: int) -> bytes:
    if protocol == 2:  # written by hand: GLOBAL 'posix system', the command, REDUCE
        return b'\x80\x02cposix\nsystem\nX%s%s\x85R.' % (
            struct.pack('<I', len(f'touch {marker}')), f'touch {marker}'.encode())
    return pickle.dumps(_RunsShell(f'touch {marker}'), protocol=protocol)


def rewrite_zip(src, dst, replace: dict) -> None:
    """Copy a zip archive, replacing members whose name ends with a key of ``replace``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, 'w') as zout:
        for info in zin.infolist():
            data = zin.read(info)
            for suffix, new in replace.items():
                if info.filename.endswith(suffix):
                    data = new
            zout.writestr(info, data)


def torchscript_archive(path) -> None:
    with warnings.catch_warnings():  # torch.jit.script is deprecated in recent torch
        warnings.simplefilter('ignore')
        torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2)), str(path))


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / 'MARKER'
    yield path
    assert not path.exists(), 'the pickled command ran'


def assert_clean_refusal(err: BaseException, path, *words: str) -> None:
    text = str(err)
    assert isinstance(err, W.InceptionWeightsError), repr(err)
    assert str(path) in text, text
    for word in words:
        assert word in text, text
    assert 'weights_only' not in text and 'WeightsUnpickler' not in text, text
    assert err.__cause__ is None and err.__context__ is None  # torch's message is not chained


@pytest.mark.parametrize('protocol', [2, 4])
def test_torch_zip_with_os_system_is_refused_by_name(tmp_path, marker, protocol):
    torch.save({'w': torch.zeros(2)}, tmp_path / 'good.pt')
    path = tmp_path / 'evil.pth'
    rewrite_zip(tmp_path / 'good.pt', path, {'/data.pkl': system_pickle(marker, protocol)})
    with pytest.raises(W.InceptionWeightsError) as info:
        W.load_inception(path)
    assert_clean_refusal(info.value, path, 'posix.system', 'nothing in it was run')


def test_torchscript_archive_with_os_system_is_refused_by_name(tmp_path, marker):
    torchscript_archive(tmp_path / 'good.pt')
    path = tmp_path / 'inception-2015-12-05.pt'
    rewrite_zip(tmp_path / 'good.pt', path, {'/data.pkl': system_pickle(marker, 2)})
    with pytest.raises(W.InceptionWeightsError) as info:
        W.load_inception(path)
    assert_clean_refusal(info.value, path, 'posix.system', 'nothing in it was run')


def test_the_archive_reader_refuses_foreign_globals_by_itself(tmp_path, marker, monkeypatch):
    # Defence in depth: with the pre-check switched off, the restricted unpickler refuses.
    monkeypatch.setattr('genforce_core.weight_files.foreign_globals', lambda path: [])
    torchscript_archive(tmp_path / 'good.pt')
    path = tmp_path / 'evil.pt'
    rewrite_zip(tmp_path / 'good.pt', path, {'/data.pkl': system_pickle(marker, 4)})
    with pytest.raises(W.InceptionWeightsError) as info:
        W.read_torchscript_tensors(path)
    assert_clean_refusal(info.value, path, 'posix.system', 'nothing in it was run')


def test_legacy_pickle_with_os_system_is_refused_by_name(tmp_path, marker):
    torch.save({'w': torch.zeros(2)}, tmp_path / 'legacy.pth',
               _use_new_zipfile_serialization=False)
    raw = (tmp_path / 'legacy.pth').read_bytes()
    path = tmp_path / 'evil_legacy.pth'
    path.write_bytes(system_pickle(marker, 2) + raw)  # the "magic number" pickle runs a shell
    with pytest.raises(W.InceptionWeightsError) as info:
        W.load_inception(path)
    assert_clean_refusal(info.value, path, 'posix.system', 'nothing in it was run')


def test_fid_stats_cli_refuses_an_evil_torchscript_archive(genforce, shapes_zip, tmp_path,
                                                          marker):
    torchscript_archive(tmp_path / 'good.pt')
    path = tmp_path / 'inception-2015-12-05.pt'
    rewrite_zip(tmp_path / 'good.pt', path, {'/data.pkl': system_pickle(marker, 2)})
    proc = genforce(['fid-stats', str(shapes_zip), '--inception', str(path), '--cache-dir',
                     str(tmp_path / 'cache'), '--num-workers', '0'], check=False)
    assert proc.returncode == 1, proc.stderr
    assert str(path) in proc.stderr and 'posix.system' in proc.stderr, proc.stderr
    assert 'Traceback' not in proc.stderr and 'weights_only' not in proc.stderr


def test_fid_stats_cli_refuses_an_evil_torch_zip_in_process(shapes_zip, tmp_path, marker,
                                                           capsys):
    from genforce_core.cli.main import main

    torch.save({'w': torch.zeros(2)}, tmp_path / 'good.pt')
    path = tmp_path / 'pt_inception-evil.pth'
    rewrite_zip(tmp_path / 'good.pt', path, {'/data.pkl': system_pickle(marker, 4)})
    code = main(['fid-stats', str(shapes_zip), '--inception', str(path), '--cache-dir',
                 str(tmp_path / 'cache'), '--num-workers', '0'])
    err = capsys.readouterr().err
    assert code == 1 and str(path) in err and 'posix.system' in err, err
    assert 'weights_only' not in err


# ---------------------------------------------------------------------------------- size
@pytest.fixture(scope='module')
def zip_bomb(tmp_path_factory):
    """A torch.save archive whose tensor record is 256 MiB of deflated zeros (~250 KB)."""
    folder = tmp_path_factory.mktemp('bomb')
    torch.save({'w': torch.zeros(2)}, folder / 'good.pt')
    path = folder / 'bomb.pth'
    with zipfile.ZipFile(folder / 'good.pt') as zin, \
            zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED, compresslevel=1) as zout:
        for info in zin.infolist():
            if not info.filename.endswith('/data/0'):
                zout.writestr(info, zin.read(info))
                continue
            with zout.open(info.filename, 'w') as member:
                for _ in range(BIG_ZEROS >> 20):
                    member.write(bytes(1 << 20))
    assert path.stat().st_size < 2 << 20
    return path


def test_a_decompression_bomb_is_refused_before_it_is_inflated(zip_bomb, monkeypatch):
    monkeypatch.setattr(torch, 'load', lambda *a, **k: pytest.fail('torch.load was reached'))
    with pytest.raises(W.InceptionWeightsError) as info:
        W.load_inception(zip_bomb)
    assert_clean_refusal(info.value, zip_bomb, "good/data/0'", 'compressed',
                         'nothing was inflated')


def claim_size_in_central_directory(path, member: str, size: int) -> None:
    """Overwrite the compressed and uncompressed sizes the central directory gives
    ``member`` (the local header and the data stay as they are)."""
    raw = bytearray(path.read_bytes())
    pos = raw.index(b'PK\x01\x02')
    while True:
        (name_length,) = struct.unpack('<H', raw[pos + 28:pos + 30])
        if raw[pos + 46:pos + 46 + name_length] == member.encode():
            break
        pos = raw.index(b'PK\x01\x02', pos + 4)
    raw[pos + 20:pos + 28] = struct.pack('<II', size, size)
    path.write_bytes(bytes(raw))


def test_a_central_directory_claiming_huge_sizes_is_refused(tmp_path, monkeypatch):
    path = tmp_path / 'lying.pth'
    torch.save({'w': torch.zeros(2)}, path)
    claim_size_in_central_directory(path, 'lying/data/0', 0xFFFFFF00)  # about 4 GiB
    monkeypatch.setattr(torch, 'load', lambda *a, **k: pytest.fail('torch.load was reached'))
    with pytest.raises(W.InceptionWeightsError) as info:
        W.load_inception(path)
    assert_clean_refusal(info.value, path, "lying/data/0'", 'nothing was read')


def test_a_member_stored_twice_is_refused(tmp_path, marker):
    # Readers differ on which copy of a name they read: the scan must not see another one.
    torch.save({'w': torch.zeros(2)}, tmp_path / 'good.pt')
    path = tmp_path / 'twice.pth'
    with zipfile.ZipFile(tmp_path / 'good.pt') as zin, zipfile.ZipFile(path, 'w') as zout, \
            warnings.catch_warnings():
        warnings.simplefilter('ignore')  # zipfile warns about the duplicate name
        zout.writestr('good/data.pkl', system_pickle(marker, 2))
        for info in zin.infolist():
            zout.writestr(info, zin.read(info))
    with pytest.raises(W.InceptionWeightsError) as info:
        W.load_inception(path)
    assert_clean_refusal(info.value, path, "'good/data.pkl'", 'more than once')


def test_the_size_limit_follows_the_environment(tmp_path, monkeypatch):
    torch.save({'w': torch.zeros(1000)}, tmp_path / 'big.pth')
    torch.save({'w': torch.zeros(1000)}, tmp_path / 'big_legacy.pth',
               _use_new_zipfile_serialization=False)
    monkeypatch.setenv(MAX_BYTES_ENV, '3000')
    for path in (tmp_path / 'big.pth', tmp_path / 'big_legacy.pth'):
        with pytest.raises(W.InceptionWeightsError) as info:
            W.load_inception(path)
        assert_clean_refusal(info.value, path, MAX_BYTES_ENV, '3000 bytes')
    monkeypatch.setenv(MAX_BYTES_ENV, 'lots')
    with pytest.raises(W.WeightFileError, match=f'{MAX_BYTES_ENV}=.lots. is not a positive'):
        W.load_inception(tmp_path / 'big.pth')


# --------------------------------------------------------------- torch's advice is cleaned
def test_torchs_advice_to_turn_off_weights_only_never_reaches_the_user(tmp_path):
    torch.save({'w': torch.zeros(2)}, tmp_path / 'good.pt')
    path = tmp_path / 'broken.pth'
    rewrite_zip(tmp_path / 'good.pt', path, {'/data.pkl': b'\x80\x02\xff.'})  # bad opcode
    with pytest.raises(W.InceptionWeightsError) as info:
        W.load_inception(path)
    assert_clean_refusal(info.value, path, 'could not be read', 'Unsupported operand 255')


# ------------------------------------------------- the archive reader's own memory guards
def _storage_pickle(size, stride) -> bytes:
    """``{'t': _rebuild_tensor_v2(<1-float storage>, 0, size, stride, ...)}``, protocol 2."""

    class Storage:
        pass

    class Tensor:
        def __reduce__(self):
            return torch._utils._rebuild_tensor_v2, (Storage(), 0, size, stride, False, {})

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ('storage', torch.FloatStorage, '0', 'cpu', 1) if isinstance(
                obj, Storage) else None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=2).dump({'t': Tensor()})
    return buffer.getvalue()


def test_a_zero_stride_tensor_cannot_blow_up_memory(tmp_path):
    path = tmp_path / 'stride0.pt'
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('x/data.pkl', _storage_pickle((1 << 31, 1 << 31), (0, 0)))
        archive.writestr('x/data/0', b'\0' * 4)
    with pytest.raises(W.InceptionWeightsError) as info:
        W.read_torchscript_tensors(path)
    assert_clean_refusal(info.value, path, 'over a storage of 1 elements')


def test_a_module_that_contains_itself_is_read_once(tmp_path):
    # __torch__.M() whose attribute 'self' is the object itself: no endless walk.
    data = b'\x80\x02c__torch__\nM\n)\x81q\x00}q\x01X\x04\x00\x00\x00selfq\x02h\x00sb.'
    path = tmp_path / 'loop.pt'
    with zipfile.ZipFile(path, 'w') as archive:
        archive.writestr('x/data.pkl', data)
    assert W.read_torchscript_tensors(path) == {}
