"""The allow-list unpickler: official pickles load as inert data, anything else is refused."""
from __future__ import annotations

import os
import pickle
import subprocess

import numpy as np
import pytest
import torch

from genforce_converters.converters import get_converter
from genforce_converters.safe_pickle import (
    PersistentObject,
    UnsafePickleError,
    load_pickle,
    load_torch_file,
    module_state_dict,
)
from genforce_converters.testing import write_malicious_pickle, write_stylegan2ada_pickle


class _Call:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / 'pwned'
    path = write_malicious_pickle(tmp_path / 'evil.pkl', marker)
    with pytest.raises(UnsafePickleError, match=r'(posix|os)\.system') as info:
        load_pickle(path)
    assert str(path) in str(info.value) and 'nothing in it was run' in str(info.value)
    assert not marker.exists()
    # The converter front door refuses it the same way.
    with pytest.raises(UnsafePickleError, match='system'):
        get_converter('stylegan2ada_pth').read(path)
    assert not marker.exists()
    # Control: plain pickle would have run the payload.
    pickle.loads(path.read_bytes())
    assert marker.exists()


@pytest.mark.parametrize('payload', [
    _Call(eval, "__import__('pathlib').Path('MARK').touch()"),
    _Call(subprocess.call, ['touch', 'MARK']),
    _Call(getattr, dict, 'fromkeys'),
    _Call(np.load, 'x.npy'),  # numpy is allowed only for arrays, dtypes and scalars
    _Call(torch.load, 'x.pt'),
], ids=['eval', 'subprocess', 'getattr', 'numpy.load', 'torch.load'])
def test_other_dangerous_globals_are_refused(tmp_path, payload):
    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps({'G': payload}))
    with pytest.raises(UnsafePickleError, match='refused to load'):
        load_pickle(path)


def test_malicious_torch_file_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pt'
    torch.save({'g_ema': {}, 'x': _Call(os.system, f'touch {marker}')}, path)
    with pytest.raises(UnsafePickleError, match='system'):
        load_torch_file(path)
    with pytest.raises(UnsafePickleError):
        get_converter('stylegan2_rosinality').read(path)
    assert not marker.exists()


@pytest.mark.parametrize('protocol', [2, 4])
def test_persistent_objects_become_inert_records(tmp_path, official, protocol):
    marker = tmp_path / 'embedded_source_ran'
    path = write_stylegan2ada_pickle(tmp_path / 'snap.pkl', official.G, official.D,
                                     official.g_kwargs, official.d_kwargs, marker=str(marker),
                                     protocol=protocol)
    data = load_pickle(path)
    assert not marker.exists()  # the embedded module source was kept as text
    G = data['G_ema']
    assert isinstance(G, PersistentObject) and G.class_name == 'Generator'
    assert 'embedded source ran' in G.module_src
    sd = module_state_dict(G)
    expected = official.G.state_dict()
    assert sd.keys() == expected.keys()
    assert all(torch.equal(sd[k], expected[k]) for k in sd)


def test_unreadable_file_names_itself(tmp_path):
    path = tmp_path / 'junk.pkl'
    path.write_bytes(b'not a pickle at all')
    with pytest.raises(Exception, match='junk.pkl'):
        load_pickle(path)
