"""Contract checks for plugin test suites: one call checks that a plugin is discovered,
loads, declares its API and a core version range, and that its hooks return well-formed data.

    from genforce_core.testing import check_plugin_contract, skip_unless_installed

    skip_unless_installed('genforce-plugin-mygan')

    def test_plugin_contract():
        check_plugin_contract('mygan', 'genforce-plugin-mygan')

The model contract suite (:mod:`genforce_core.contract_suite`) runs every contract check on
the tiny models a plugin declares with the ``genforce_test_models`` hook; in a plugin's tests:

    from genforce_core.testing import contract_tests, skip_unless_installed

    skip_unless_installed('genforce-plugin-mygan')
    TestModelContract = contract_tests('mygan')

or, for one model config: ``check_model_contract(dict(type='GAN', generator=..., ...))``.
"""
from __future__ import annotations

import importlib
import importlib.metadata as importlib_metadata
import os
from pathlib import Path

from packaging.requirements import Requirement

from . import __version__ as core_version
from .contract_suite import (  # noqa: F401  (re-exported: the model contract suite)
    CHECKS,
    ModelCase,
    check_model_contract,
    contract_tests,
    model_cases,
    uncovered_models,
)
from .plugins import load_plugins

ZOO_KEYS = {'name', 'family', 'resolution', 'dataset', 'url', 'sha256', 'converter'}


def skip_unless_installed(distribution: str) -> None:
    """Skip the calling test module when ``distribution`` is not installed."""
    import pytest

    try:
        importlib_metadata.distribution(distribution)
    except importlib_metadata.PackageNotFoundError:
        pytest.skip(f'{distribution} is not installed (pip install it to run these tests)',
                    allow_module_level=True)


def requirement(distribution: str, name: str) -> Requirement | None:
    """The requirement ``distribution`` declares on ``name`` (None if it has none)."""
    for line in importlib_metadata.requires(distribution) or []:
        req = Requirement(line)
        if req.name == name and req.marker is None:
            return req
    return None


def check_plugin_contract(name: str, distribution: str) -> None:
    """Assert that plugin ``name`` of ``distribution`` honours the genforce plugin contract."""
    manager = load_plugins()
    info = manager.plugins[name]
    assert info.status == 'loaded', info.error
    assert info.distribution == distribution
    module = manager.pm.get_plugin(name)
    package = importlib.import_module(module.__name__.split('.')[0])
    assert info.version == importlib_metadata.version(distribution) == package.__version__
    assert info.api_version == module.GENFORCE_PLUGIN_API

    core = requirement(distribution, 'genforce-core')
    assert core is not None, f'{distribution} does not depend on genforce-core'
    assert core.specifier and core.specifier.contains(core_version), (
        f'{distribution} needs genforce-core{core.specifier}; the core is {core_version}')
    assert any(s.operator in ('<', '<=', '~=', '==') for s in core.specifier), (
        f'{distribution} must bound genforce-core from above, got {core.specifier}')

    if hasattr(module, 'genforce_model_zoo'):
        for entry in module.genforce_model_zoo() or []:
            missing = ZOO_KEYS - set(entry)
            assert not missing, f'zoo entry {entry.get("name")} lacks {sorted(missing)}'
    if hasattr(module, 'genforce_op_status'):
        status = module.genforce_op_status()
        assert isinstance(status, dict)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in status.items())


TESTDATA_ENV = 'GENFORCE_TESTDATA'
TESTDATA_DIR = Path('tests') / 'testdata'


def find_testdata(name: str, repo: Path,
                  files: tuple[str, ...] = ('meta.json', 'io.npz')) -> Path:
    """The reference-data folder ``name`` holding ``files``: ``REPO/tests/testdata/NAME``, or,
    when ``$GENFORCE_TESTDATA`` is set, that folder itself or its ``NAME`` subfolder.

    Raises FileNotFoundError naming every place it looked: the checks that need reference data
    are the strongest evidence of faithfulness, so a missing folder must fail, never skip.
    """
    env = os.environ.get(TESTDATA_ENV)
    if env:  # an explicit override is never silently replaced by the in-repo copy
        candidates, origin = [Path(env), Path(env) / name], f'${TESTDATA_ENV}={env}'
    else:
        candidates, origin = [Path(repo) / TESTDATA_DIR / name], 'the checkout'
    for path in candidates:
        if all((path / file).is_file() for file in files):
            return path
    looked = ', '.join(str(p) for p in candidates)
    raise FileNotFoundError(f'reference data {name} ({", ".join(files)}) not found in {origin}; '
                            f'looked in {looked}')
