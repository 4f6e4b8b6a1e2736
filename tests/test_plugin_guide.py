"""docs/plugin_guide.md and the example plugin agree: the example is the guide, file for file."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]
GUIDE = (REPO / 'docs' / 'plugin_guide.md').read_text()
EXAMPLE = REPO / 'examples' / 'dcgan_plugin'
PACKAGE = EXAMPLE / 'genforce_example_dcgan'
# The guide's placeholder names and the example's.
RENAMES = {'genforce-plugin-mygan': 'genforce-plugin-example-dcgan',
           'genforce_mygan': 'genforce_example_dcgan', "'mygan'": "'example_dcgan'"}


def code_block(after: str, language: str) -> str:
    """The first ``language`` code block after the heading ``after``, with the example's
    names."""
    start = GUIDE.index(after)
    match = re.compile(rf'```{language}\n(.*?)```', re.S).search(GUIDE, start)
    text = match.group(1)
    for ours, theirs in RENAMES.items():
        text = text.replace(ours, theirs)
    return text


def hooks(source: str) -> list[str]:
    return [node.name for node in ast.parse(source).body
            if isinstance(node, ast.FunctionDef) and any(
                getattr(d, 'id', None) == 'hookimpl' for d in node.decorator_list)]


def test_the_example_has_every_file_of_the_guide():
    for path in ('pyproject.toml', 'README.md', 'LICENSE', 'genforce_example_dcgan/__init__.py',
                 'genforce_example_dcgan/plugin.py', 'genforce_example_dcgan/networks.py',
                 'genforce_example_dcgan/configs/dcgan_shapes32.py', 'tests/test_contract.py'):
        assert (EXAMPLE / path).is_file(), path


def test_pyproject_declares_what_the_guide_says():
    guide = tomllib.loads(code_block('### 1. `pyproject.toml`', 'toml'))
    example = tomllib.loads((EXAMPLE / 'pyproject.toml').read_text())
    assert example['project']['dependencies'] == guide['project']['dependencies']
    group = 'genforce.plugins'
    assert list(guide['project']['entry-points'][group].values()) == \
        list(example['project']['entry-points'][group].values())
    assert example['tool']['setuptools']['package-data'] == \
        guide['tool']['setuptools']['package-data']


def test_plugin_module_implements_the_guides_hooks_in_its_order():
    guide = code_block('### 2. `genforce_mygan/plugin.py`', 'python')
    example = (PACKAGE / 'plugin.py').read_text()
    assert hooks(example) == hooks(guide)
    assert "GENFORCE_PLUGIN_API = '1.0'" in guide and "GENFORCE_PLUGIN_API = '1.0'" in example
    assert 'from genforce_core.api import hookimpl' in example


def test_networks_set_the_contract_attributes_the_guide_shows():
    example = (PACKAGE / 'networks.py').read_text()
    assert 'from genforce_core.api import MODELS' in example
    guide = code_block('### 3. `genforce_mygan/networks.py`', 'python')
    for line in ('self.z_dim, self.c_dim = z_dim, 0',
                 'self.img_resolution, self.img_channels = resolution, img_channels',
                 'self.c_dim, self.img_resolution, self.img_channels = 0, resolution, '
                 'img_channels'):
        assert line in guide and line in example, line


def test_config_is_the_guides_model_and_data_on_the_core_base():
    guide = code_block('### 4. `genforce_mygan/configs/mygan_shapes32.py`', 'python')
    example = (PACKAGE / 'configs' / 'dcgan_shapes32.py').read_text()
    assert "_base_ = ['genforce_core::_base_/gan.py']" in guide
    assert "_base_ = ['genforce_core::_base_/gan.py']" in example
    guide_keys = {node.targets[0].id for node in ast.parse(guide).body}
    example_keys = {node.targets[0].id for node in ast.parse(example).body
                    if isinstance(node, ast.Assign)}
    # The example overrides the optimizer's learning rate and betas too (said in the guide).
    assert example_keys - guide_keys == {'optim_wrapper'}
    assert 'learning rate' in GUIDE


def test_contract_test_file_is_the_guides():
    guide = code_block('### 5. `tests/test_contract.py`', 'python')
    example = (EXAMPLE / 'tests' / 'test_contract.py').read_text()
    for line in guide.strip().splitlines():
        assert line in example.splitlines(), line
