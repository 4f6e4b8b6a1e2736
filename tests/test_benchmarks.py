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
