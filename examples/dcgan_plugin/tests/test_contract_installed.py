"""The contract suite of test_contract.py, run as a user of the plugin runs it: in a fresh
interpreter where the plugin is pip-installed (this repository's environment does not install
the example, so that the other tests see it exactly as a third-party plugin)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from genforce_core.contract_suite import CHECKS

CONTRACT_TESTS = Path(__file__).with_name('test_contract.py')


@pytest.mark.slow
def test_contract_suite_passes_with_the_plugin_installed(example_plugin_site, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(example_plugin_site), os.environ.get('PYTHONPATH', '')) if p))
    proc = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-rs',
         '--rootdir', str(tmp_path), str(CONTRACT_TESTS)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    passed = int(re.search(r'(\d+) passed', out).group(1))
    # Every check on dcgan_tiny but the two that do not apply (progressive: no lod buffers;
    # image_transform: no input transform), + 2 plugin-level tests.
    assert passed == len(CHECKS) - 2 + 2, out[-4000:]
    assert re.search(r'SKIPPED .*progressive: not applicable to dcgan_tiny', out), out[-4000:]
