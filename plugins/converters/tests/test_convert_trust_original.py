"""``genforce convert --test_num``: the original implementation (which unpickles the file with
full pickle, running its code) is used only with --trust-original-code; without it nothing from
the file runs. Stand-ins for NVIDIA's ``legacy`` / ``dnnlib`` and rosinality's ``model`` are
written in tmp_path and touch a marker when they run."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from genforce_converters.testing import write_rosinality_checkpoint, write_stylegan2ada_pickle
from genforce_core.cli.main import main

ORIGINAL_MODULES = ('legacy', 'dnnlib', 'model')


@pytest.fixture(autouse=True)
def fresh_original_modules(monkeypatch):
    """Each test imports its own stand-ins (none of them stays in ``sys.modules``)."""
    for name in ORIGINAL_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield
    for name in ORIGINAL_MODULES:
        sys.modules.pop(name, None)


def _nvidia_repo(tmp_path: Path, monkeypatch, legacy_src: str) -> Path:
    repo = tmp_path / 'nvidia_repo'
    (repo / 'dnnlib').mkdir(parents=True)
    (repo / 'dnnlib' / '__init__.py').write_text('')
    (repo / 'legacy.py').write_text(legacy_src)
    monkeypatch.syspath_prepend(str(repo))
    return repo


def _legacy_touching(marker: Path) -> str:
    """A ``legacy`` whose loader records that it ran and returns the reference generator."""
    return ('import pathlib\nREFERENCE = None\n\ndef load_network_pkl(f):\n'
            f'    pathlib.Path({str(marker)!r}).write_text("legacy ran")\n'
            "    return {'G_ema': REFERENCE}\n")


@pytest.fixture
def snapshot(tmp_path, official):
    embedded = tmp_path / 'embedded_source_ran'
    src = write_stylegan2ada_pickle(tmp_path / 'snap.pkl', official.G, None, official.g_kwargs,
                                    None, marker=str(embedded))
    return src, embedded


def _convert(src: Path, out: Path, *extra: str) -> int:
    return main(['convert', 'stylegan2ada_pth', '--source_model_path', str(src), '--output',
                 str(out), '--test_num', '2', *extra])


def test_test_num_runs_nothing_from_the_file_without_the_flag(tmp_path, monkeypatch, snapshot,
                                                              capsys):
    src, embedded = snapshot
    marker = tmp_path / 'legacy_ran'
    _nvidia_repo(tmp_path, monkeypatch, _legacy_touching(marker))
    out = tmp_path / 'out.pth'
    assert _convert(src, out, '--save_test_image') == 0
    text = capsys.readouterr().out
    assert not marker.exists() and not embedded.exists()
    assert 'Generated 2 test images with the converted model only' in text
    assert 'skipped' in text and '--trust-original-code' in text
    assert out.is_file() and (tmp_path / 'out_test0001.png').is_file()


def test_the_flag_compares_with_the_original(tmp_path, monkeypatch, snapshot, official, capsys):
    src, _ = snapshot
    marker = tmp_path / 'legacy_ran'
    _nvidia_repo(tmp_path, monkeypatch, _legacy_touching(marker))
    import legacy
    legacy.REFERENCE = official.G
    assert _convert(src, tmp_path / 'out.pth', '--trust-original-code') == 0
    assert marker.exists()
    assert 'Max difference to the original over 2 images' in capsys.readouterr().out


def test_missing_dependency_of_the_original_fails_before_converting(tmp_path, monkeypatch,
                                                                     snapshot, capsys):
    src, embedded = snapshot
    _nvidia_repo(tmp_path, monkeypatch, 'import click_missing_xyz\n\n'
                 'def load_network_pkl(f):\n    raise AssertionError\n')
    out = tmp_path / 'out.pth'
    assert _convert(src, out, '--trust-original-code') == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and 'Traceback' not in err
    assert "'click_missing_xyz' is missing" in err and 'pip install click_missing_xyz' in err
    assert 'Converting' not in captured.out and not out.exists()  # checked up front
    assert not embedded.exists()


def test_missing_original_repository_names_it(tmp_path, monkeypatch, snapshot, capsys):
    src, _ = snapshot
    monkeypatch.setattr(sys, 'path', [p for p in sys.path if p not in ('', '.')])
    monkeypatch.chdir(tmp_path)
    assert _convert(src, tmp_path / 'out.pth', '--trust-original-code') == 1
    err = capsys.readouterr().err
    assert "'dnnlib' is missing" in err and "NVIDIA's stylegan2-ada-pytorch on PYTHONPATH" in err


def test_the_flag_needs_test_num_and_an_original(tmp_path, snapshot, capsys):
    src, _ = snapshot
    assert main(['convert', 'stylegan2ada_pth', '--source_model_path', str(src), '--output',
                 str(tmp_path / 'a.pth'), '--trust-original-code']) == 1
    assert '--test_num' in capsys.readouterr().err
    assert main(['convert', 'stylegan2_tf', '--source_model_path', str(src), '--output',
                 str(tmp_path / 'b.pth'), '--test_num', '1', '--trust-original-code']) == 1
    assert 'no original implementation to compare stylegan2_tf' in capsys.readouterr().err
    assert not (tmp_path / 'a.pth').exists() and not (tmp_path / 'b.pth').exists()


def test_rosinality_model_module_is_not_imported_without_the_flag(tmp_path, monkeypatch,
                                                                  official, capsys):
    src = write_rosinality_checkpoint(tmp_path / 'ros.pt', official.G.state_dict(), None)
    marker = tmp_path / 'model_imported'
    repo = tmp_path / 'rosinality_repo'
    repo.mkdir()
    (repo / 'model.py').write_text(f'import pathlib\npathlib.Path({str(marker)!r}).touch()\n'
                                   'class Generator:\n    pass\n')
    monkeypatch.syspath_prepend(str(repo))
    assert main(['convert', 'stylegan2_rosinality', '--source_model_path', str(src),
                 '--output', str(tmp_path / 'ros.pth'), '--test_num', '1']) == 0
    assert not marker.exists()
    assert 'skipped' in capsys.readouterr().out


def test_help_says_the_flag_executes_code_from_the_file(capsys):
    with pytest.raises(SystemExit):
        main(['convert', '--help'])
    text = ' '.join(capsys.readouterr().out.split())
    assert ('executes code from the file (the original implementation unpickles it with full '
            'pickle)') in text
