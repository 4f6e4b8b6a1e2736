"""The benchmarks run, print their table and write JSON (tiny settings; no timing asserted)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / 'benchmarks' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_speed_table_and_json(tmp_path, capsys):
    train_speed = _load('train_speed')
    out = tmp_path / 'speed.json'
    assert train_speed.main([str(REPO / 'configs' / 'demo.py'), '--resolution', '8',
                             '--batch', '4', '--iters', '1', '--warmup', '1', '--device', 'cpu',
                             '--ops', 'cuda', 'ref', '--precision', 'fp32', 'fp16',
                             '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert 'skipped demo.py ops=cuda fp32: CUDA kernels need a CUDA device' in printed
    assert 'skipped demo.py ops=ref fp16' in printed
    rows = json.loads(out.read_text())['results']
    assert [(r['ops'], r['precision'], r['resolution'], r['batch']) for r in rows] == [
        ('ref', 'fp32', 8, 4)]
    assert rows[0]['img_per_s'] > 0 and f'{rows[0]["img_per_s"]:.1f}' in printed
    from genforce_core.api import reference_forced
    assert not reference_forced()  # lifted after timing the reference path


def test_official_compare_refuses_a_missing_official_dir(tmp_path, capsys):
    official_compare = _load('official_compare')
    out = tmp_path / 'compare.json'
    assert official_compare.main(['--official-dir', str(tmp_path / 'absent'),
                                  '--out', str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f'official_compare: --official-dir {tmp_path / "absent"}: no such directory'
    assert not out.exists()


def test_official_compare_refuses_a_dir_without_the_official_code(tmp_path, capsys):
    official_compare = _load('official_compare')
    (tmp_path / 'training').mkdir()
    (tmp_path / 'training' / 'networks.py').write_text('')
    assert official_compare.main(['--official-dir', str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert 'not a stylegan2-ada-pytorch checkout' in err
    assert 'training/loss.py' in err and 'training/networks.py' not in err
    assert len(err.strip().splitlines()) == 1
