"""Plugin discovery policy: loading, broken and incompatible plugins, strict mode, disabling,
conflicting registrations, and the errors for unknown config types."""
from __future__ import annotations

import json
import os
import subprocess
import sys
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


def test_lists_the_seven_plugins_and_reports_broken_ones(genforce, site):
    plugins, stderr = plugins_json(genforce, site)
    for name in ('pggan', 'stylegan', 'stylegan2', 'stylegan2ada', 'metrics_fid', 'converters',
                 'inversion'):
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


def test_two_plugins_registering_one_key_skip_the_second_naming_both(genforce, tmp_path):
    make_distribution(tmp_path, 'acme-one', {'acme_one.py': GOOD.format(cls='SameNet')},
                      {'acme_one': 'acme_one'})
    make_distribution(tmp_path, 'acme-two', {'acme_two.py': GOOD.format(cls='SameNet')},
                      {'acme_two': 'acme_two'})
    plugins, stderr = plugins_json(genforce, tmp_path)
    assert plugins['acme_one']['status'] == 'loaded'
    assert plugins['acme_one']['registered'] == {'models': ['SameNet']}
    assert plugins['acme_two']['status'] == 'failed'
    assert "'SameNet' is registered twice" in stderr
    assert 'acme_one (acme-one)' in stderr and 'acme_two (acme-two)' in stderr

    proc = genforce(['plugins'], pythonpath=[tmp_path], check=False,
                    env={'GENFORCE_STRICT_PLUGINS': '1'})
    assert proc.returncode == 1
    assert "'SameNet' is registered twice" in proc.stderr and 'Traceback' not in proc.stderr


def marker_module(marker: Path, body: str = '') -> str:
    """Source of a plugin module that leaves ``marker`` behind when it is imported."""
    return (f'from pathlib import Path\nPath({str(marker)!r}).write_text("imported")\n'
            + textwrap.dedent(body))


SQUATTER = '''
from genforce_core import hookimpl
GENFORCE_PLUGIN_API = '1.0'

@hookimpl
def genforce_register_modules(registries):
    from torch import nn

    @registries.models.register_module(name='StyleGAN2Generator')
    class Squatted(nn.Module):
        pass
'''


def test_a_distribution_squatting_a_plugin_name_is_never_imported(genforce, tmp_path):
    marker = tmp_path / 'squatter_imported'
    make_distribution(tmp_path, 'genforce-plugin-squatter',
                      {'squatter_pkg/__init__.py': marker_module(marker, SQUATTER)},
                      {'stylegan2': 'squatter_pkg'})
    # PYTHONPATH puts the squatter before site-packages, i.e. first in importlib's order.
    plugins, stderr = plugins_json(genforce, tmp_path)
    real = plugins['stylegan2']
    assert real['status'] == 'loaded', real
    assert real['distribution'] == 'genforce-plugin-stylegan2'
    assert real['module'] == 'genforce_stylegan2.plugin'
    assert 'StyleGAN2Generator' in real['registered']['models']
    assert real['rivals'] == ['genforce-plugin-squatter 0.0.1']
    assert not marker.exists(), 'the squatting module was imported'
    lines = [line for line in stderr.splitlines() if 'genforce-plugin-squatter' in line]
    assert len(lines) == 1, stderr
    assert 'genforce-plugin-stylegan2' in lines[0] and "'stylegan2'" in lines[0]

    proc = genforce(['plugins'], pythonpath=[tmp_path], check=False,
                    env={'GENFORCE_STRICT_PLUGINS': '1'})
    assert proc.returncode == 1 and 'genforce-plugin-squatter' in proc.stderr
    assert not marker.exists()


def test_two_non_canonical_claims_of_one_name_import_neither(genforce, tmp_path):
    markers = {dist: tmp_path / f'{dist}_imported' for dist in ('acme-real', 'acme-squat')}
    for dist, marker in markers.items():
        module = dist.replace('-', '_')
        make_distribution(tmp_path, dist,
                          {f'{module}.py': marker_module(marker, GOOD.format(cls='AcmeNet'))},
                          {'acme': module})
    plugins, stderr = plugins_json(genforce, tmp_path)
    acme = plugins['acme']
    assert acme['status'] == 'conflict'
    assert 'acme-real 0.0.1' in acme['error'] and 'acme-squat 0.0.1' in acme['error']
    assert 'acme-real' in stderr and 'acme-squat' in stderr
    assert not any(marker.exists() for marker in markers.values())

    # Naming the unwanted distribution in GENFORCE_DISABLE_PLUGINS keeps the other one.
    plugins, _ = plugins_json(genforce, tmp_path, GENFORCE_DISABLE_PLUGINS='acme-squat')
    assert plugins['acme']['status'] == 'loaded'
    assert plugins['acme']['distribution'] == 'acme-real'
    assert markers['acme-real'].exists() and not markers['acme-squat'].exists()


CLASHING = '''
from genforce_core import hookimpl
GENFORCE_PLUGIN_API = '1.0'

@hookimpl
def genforce_register_modules(registries):
    from torch import nn

    @registries.models.register_module()
    class {cls}Net(nn.Module):
        pass

    @registries.models.register_module(name='StyleGAN2Generator', force={force})
    class {cls}Generator(nn.Module):
        pass

@hookimpl
def genforce_model_zoo():
    return [dict(name='{cls}-zoo', family='stylegan2', resolution=32, dataset='x',
                 url='https://example.invalid/x.pkl', sha256=None, converter='x')]
'''

CHECK_REGISTRY = '''
from genforce_core.plugins import load_plugins
from genforce_core.registry import MODELS
load_plugins()
print(MODELS.owners['StyleGAN2Generator'], MODELS.get('StyleGAN2Generator').__module__)
print(sorted(k for k in MODELS.module_dict if k.startswith('Acme')))
'''


def test_a_plugin_registering_a_taken_key_is_rolled_back(genforce, tmp_path):
    # Names sorting before 'stylegan2': a third party must not take a first-party key by
    # loading first, with force=True or without.
    make_distribution(tmp_path, 'acme-clash',
                      {'acme_clash.py': CLASHING.format(cls='AcmeClash', force=False)},
                      {'acme_clash': 'acme_clash'})
    make_distribution(tmp_path, 'acme-force',
                      {'acme_force.py': CLASHING.format(cls='AcmeForce', force=True)},
                      {'acme_force': 'acme_force'})
    plugins, stderr = plugins_json(genforce, tmp_path)
    assert plugins['stylegan2']['status'] == 'loaded'
    assert 'StyleGAN2Generator' in plugins['stylegan2']['registered']['models']
    for name in ('acme_clash', 'acme_force'):
        clash = plugins[name]
        assert clash['status'] == 'failed' and clash['registered'] == {}
        assert "'StyleGAN2Generator' is registered twice" in clash['error']
        assert 'stylegan2 (genforce-plugin-stylegan2)' in clash['error']
        assert f'{name} ({name.replace("_", "-")})' in clash['error']
        assert f"plugin '{name}'" in stderr

    proc = subprocess.run([sys.executable, '-c', CHECK_REGISTRY], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    owner, module = proc.stdout.splitlines()[-2].rsplit(' ', 1)
    assert owner == 'stylegan2 (genforce-plugin-stylegan2)'
    assert module.startswith('genforce_stylegan2.')
    assert proc.stdout.splitlines()[-1] == '[]'  # AcmeClashNet/AcmeForceNet rolled back

    zoo = genforce(['zoo', 'list', '--json'], pythonpath=[tmp_path])
    names = {entry['name'] for entry in json.loads(zoo.stdout)}
    assert names and not {'AcmeClash-zoo', 'AcmeForce-zoo'} & names


COMMAND_SQUATTER = '''
from genforce_core import hookimpl
GENFORCE_PLUGIN_API = '1.0'

@hookimpl
def genforce_add_cli_commands(subparsers):
    parser = subparsers.add_parser('train', help='not the real one')
    parser.set_defaults(func=lambda args: print('squatted train'))
'''


def test_a_plugin_cannot_replace_a_command(genforce, tmp_path):
    make_distribution(tmp_path, 'acme-cmd', {'acme_cmd.py': COMMAND_SQUATTER},
                      {'acme_cmd': 'acme_cmd'})
    proc = genforce(['train', '--help'], pythonpath=[tmp_path])
    assert 'not the real one' not in proc.stdout and 'squatted' not in proc.stdout
    assert "plugin 'acme_cmd'" in proc.stderr and "command 'train'" in proc.stderr
    assert 'genforce-core' in proc.stderr
    plugins, _ = plugins_json(genforce, tmp_path)
    assert plugins['acme_cmd']['status'] == 'loaded'


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
    assert proc.returncode == 2, proc.stderr
    assert "Unknown type 'DCGANGenerater'" in proc.stderr
    assert 'Did you mean: DCGANGenerator' in proc.stderr
    assert 'example_dcgan 0.1.0' in proc.stderr and 'stylegan2 0.1.0' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_missing_and_unparsable_configs_name_the_file(genforce, tmp_path):
    proc = genforce(['train', str(tmp_path / 'nope.py')], check=False)
    assert proc.returncode == 2
    assert f'config file {tmp_path / "nope.py"} does not exist' in proc.stderr
    bad = tmp_path / 'bad.py'
    bad.write_text('model = dict(type=\n')
    proc = genforce(['train', str(bad)], check=False)
    assert proc.returncode == 2
    assert f'cannot read config {bad}' in proc.stderr and 'SyntaxError' in proc.stderr
    assert 'Traceback' not in proc.stderr
