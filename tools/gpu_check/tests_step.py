"""GPU check step ``tests``: run the test files that hold CUDA tests (``@pytest.mark.gpu`` or a
``needs_cuda`` skip marker: today the StyleGAN2 ops' ``TestCuda*`` — kernels against the
references, values, first and second derivatives, fp16 — StyleGAN's blur2d kernel and
StyleGAN3's filtered_lrelu) and count what passed, failed and was skipped. On a GPU a test
skipped for want of CUDA is a failure of this step: it means the kernels were not exercised.

``test_compile_ops`` (a fresh nvcc build into a temporary cache) is left out: the ``compile``
step builds the same sources.
"""
from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEST_DIRS = ['tests', 'plugins/*/tests', 'examples/*/tests']
CUDA_MARKERS = re.compile(r'pytest\.mark\.gpu|needs_cuda')
DESELECT = ['plugins/stylegan2/tests/test_ops_cuda.py::test_compile_ops']


def cuda_test_files(repo: Path = REPO) -> list[str]:
    """Test files (relative to ``repo``) that use the GPU markers."""
    files = []
    for pattern in TEST_DIRS:
        for path in sorted(repo.glob(f'{pattern}/test_*.py')):
            if CUDA_MARKERS.search(path.read_text(errors='replace')):
                files.append(str(path.relative_to(repo)))
    return files


def skipped_for_want_of_cuda(reason: str) -> bool:
    """A skip reason saying the test needs a GPU ('needs a CUDA device'); not one of a test
    that checks the behaviour without a GPU ('... without a CUDA device') and so skips on one."""
    reason = reason.lower()
    return bool(re.search(r'\b(cuda|gpu)\b', reason)) and 'without' not in reason


def junit_counts(path: Path) -> dict:
    """Totals, failures (name and first message line) and skip reasons from a JUnit XML."""
    root = ET.parse(path).getroot()
    cases = root.iter('testcase')
    counts = collections.Counter()
    failed, skipped = [], collections.Counter()
    for case in cases:
        name = f'{case.get("classname")}::{case.get("name")}'
        outcome = 'passed'
        for child in case:
            if child.tag in ('failure', 'error'):
                outcome = 'failed'
                failed.append(dict(test=name, message=(child.get('message') or '')[:300]))
            elif child.tag == 'skipped':
                outcome = 'skipped'
                skipped[(child.get('message') or '')[:200]] += 1
        counts[outcome] += 1
    return dict(passed=counts['passed'], failed=counts['failed'], skipped=counts['skipped'],
                failures=failed, skip_reasons=dict(skipped))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--json', type=Path, required=True)
    parser.add_argument('--junit', type=Path, required=True)
    parser.add_argument('--rehearse', action='store_true', help='collect the tests, run none')
    args = parser.parse_args(argv)

    files = cuda_test_files()
    args.junit.unlink(missing_ok=True)  # never count an earlier run's results
    cmd = [sys.executable, '-m', 'pytest', '-p', 'no:cacheprovider', '-q', '-rfEs',
           *files, *[f'--deselect={d}' for d in DESELECT]]
    if args.rehearse:
        cmd.append('--collect-only')
    else:
        cmd += [f'--junitxml={args.junit}', '-o', 'junit_family=xunit2']
    print('$', ' '.join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    print(proc.stdout, flush=True)
    result: dict = dict(files=files, returncode=proc.returncode)
    if args.rehearse:
        collected = [line for line in proc.stdout.splitlines() if '::' in line]
        result.update(collected=len(collected), note=f'rehearsal: collected {len(collected)} '
                      'test(s), ran none')
        ok = proc.returncode == 0 and bool(collected)
    else:
        result.update(junit_counts(args.junit) if args.junit.is_file() else {})
        no_cuda = sum(n for reason, n in result.get('skip_reasons', {}).items()
                      if skipped_for_want_of_cuda(reason))
        result['skipped_for_no_cuda'] = no_cuda
        ok = proc.returncode == 0 and result.get('passed', 0) > 0 and not no_cuda
        result['note'] = (f'{result.get("passed", 0)} passed, {result.get("failed", 0)} failed, '
                          f'{result.get("skipped", 0)} skipped'
                          + (f' ({no_cuda} for want of CUDA)' if no_cuda else ''))
    args.json.write_text(json.dumps(result, indent=2))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
