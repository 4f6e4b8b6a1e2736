"""Plugin discovery policy: loading, broken and incompatible plugins, strict mode, disabling,
conflicting registrations, and the errors for unknown config types."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest


def make_distribution(site: Path, dist: str, modules: dict[str, str],
                      entry_points: dict[str, str]) -> None:
    """Write an installed distribution (package files + dist-info, as pip leaves them)."""
    for name, source in modules.items():
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    info = site / f'{dist.replace("-", "_")}-0.0.1.dist-info'
    info.mkdir(parents=True)
    (info / 'METADATA').write_text(f'Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n')
    lines = ['[genforce.plugins]'] + [f'{k} = {v}' for k, v in entry_points.items()]
    (info / 'entry_points.txt').write_text('\n'.join(lines) + '\n')


GOOD = '''
from genforce_core import hookimpl
GENFORCE_PLUGIN_API = '1.0'

@hookimpl
def genforce_register_modules(registries):
    from torch import nn

    @registries.models.register_module()
    class {cls}(nn.Module):
        pass

@hookimpl
def genforce_op_status():
    return {{'fused_thing': 'reference'}}
'''


@pytest.fixture
def site(tmp_path) -> Path:
    make_distribution(tmp_path, 'acme-good', {'acme_good.py': GOOD.format(cls='AcmeGenerator')},
                      {'acme_good': 'acme_good'})
    make_distribution(tmp_path, 'acme-broken', {'acme_broken.py': 'import no_such_module_x\n'},
                      {'acme_broken': 'acme_broken'})
    make_distribution(tmp_path, 'acme-missing', {}, {'acme_missing': 'acme_not_there.plugin'})
    make_distribution(tmp_path, 'acme-future',
                      {'acme_future.py': "GENFORCE_PLUGIN_API = '2.0'\n"},
                      {'acme_future': 'acme_future'})
    return tmp_path


def plugins_json(genforce, site, **env) -> dict[str, dict]:
    proc = genforce(['plugins', '--json'], pythonpath=[site], env=env)
    return {p['name']: p for p in json.loads(proc.stdout)}, proc.stderr


def test_lists_the_six_plugins_and_reports_broken_ones(genforce, site):
    plugins, stderr = plugins_json(genforce, site)
    for name in ('pggan', 'stylegan', 'stylegan2', 'stylegan2ada', 'metrics_fid', 'converters'):
        assert plugins[name]['status'] == 'loaded', plugins[name]
    good = plugins['acme_good']
    assert good['status'] == 'loaded'
    assert good['distribution'] == 'acme-good'
    assert good['registered'] == {'models': ['AcmeGenerator']}
    assert good['ops'] == {'fused_thing': 'reference'}

    broken = plugins['acme_broken']
    assert broken['status'] == 'failed'
    assert "No module named 'no_such_module_x'" in broken['error']
    missing = plugins['acme_missing']
    assert missing['status'] == 'failed' and 'acme_not_there' in missing['error']
    future = plugins['acme_future']
    assert future['status'] == 'incompatible' and '2.0' in future['error']
    # One warning per skipped plugin, naming the plugin, its distribution and the cause.
    for name, dist in (('acme_broken', 'acme-broken'), ('acme_missing', 'acme-missing'),
                       ('acme_future', 'acme-future')):
        lines = [line for line in stderr.splitlines() if f"plugin '{name}'" in line]
        assert len(lines) == 1, stderr
        assert dist in lines[0] and 'skipped' in lines[0]


def test_strict_mode_turns_a_skip_into_an_error(genforce, site):
    proc = genforce(['plugins'], pythonpath=[site], env={'GENFORCE_STRICT_PLUGINS': '1'},
                    check=False)
    assert proc.returncode == 1
    assert "plugin 'acme_broken' from distribution acme-broken" in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_disabled_plugins_are_not_imported(genforce, site):
    plugins, stderr = plugins_json(genforce, site,
                                   GENFORCE_DISABLE_PLUGINS='acme_broken, stylegan',
                                   GENFORCE_STRICT_PLUGINS='0')
    assert plugins['acme_broken']['status'] == 'disabled'
    assert plugins['stylegan']['status'] == 'disabled'
    assert "plugin 'acme_broken'" not in stderr


def test_two_plugins_registering_one_key_is_an_error_naming_both(genforce, tmp_path):
    make_distribution(tmp_path, 'acme-one', {'acme_one.py': GOOD.format(cls='SameNet')},
                      {'acme_one': 'acme_one'})
    make_distribution(tmp_path, 'acme-two', {'acme_two.py': GOOD.format(cls='SameNet')},
                      {'acme_two': 'acme_two'})
    proc = genforce(['plugins'], pythonpath=[tmp_path], check=False)
    assert proc.returncode == 1
    assert "'SameNet' is registered twice" in proc.stderr
    assert 'acme_one (acme-one)' in proc.stderr and 'acme_two (acme-two)' in proc.stderr


def test_api_compatibility_rule():
    from genforce_core.plugins import api_compatible

    assert api_compatible('1.0', '1.0')
    assert api_compatible('1', '1.2')
    assert not api_compatible('1.3', '1.2')  # needs hooks this core does not have
    assert not api_compatible('2.0', '1.0')
    assert not api_compatible('one', '1.0')


def test_unknown_type_lists_close_matches_and_plugins(genforce, tmp_path, example_plugin_site):
    config = tmp_path / 'typo.py'
    config.write_text(textwrap.dedent('''
        model = dict(type='GAN', generator=dict(type='DCGANGenerater'),
                     discriminator=dict(type='DCGANDiscriminator'))
        train_dataloader = None
    '''))
    proc = genforce(['train', str(config), '--work-dir', str(tmp_path / 'wd')],
                    pythonpath=[example_plugin_site], check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Unknown type 'DCGANGenerater'" in proc.stderr
    assert 'Did you mean: DCGANGenerator' in proc.stderr
    assert 'example_dcgan 0.1.0' in proc.stderr and 'stylegan2 0.1.0' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_missing_and_unparsable_configs_name_the_file(genforce, tmp_path):
    proc = genforce(['train', str(tmp_path / 'nope.py')], check=False)
    assert proc.returncode == 1
    assert f'config file {tmp_path / "nope.py"} does not exist' in proc.stderr
    bad = tmp_path / 'bad.py'
    bad.write_text('model = dict(type=\n')
    proc = genforce(['train', str(bad)], check=False)
    assert proc.returncode == 1
    assert f'cannot read config {bad}' in proc.stderr and 'SyntaxError' in proc.stderr
    assert 'Traceback' not in proc.stderr
