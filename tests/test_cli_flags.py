"""The command line a new user meets: complete ``--help`` of every subcommand, the familiar
flags of NVIDIA's scripts and the original GenForce as aliases, ``genforce train --gpus N``,
the launch scripts' interpreter, and ``load_generator`` on a device the machine lacks."""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from genforce_core.api import DeviceError, available_devices, check_device, load_generator
from genforce_core.cli.main import build_parser, main
from genforce_core.cli.synthesize import network
from genforce_core.cli.train import apply_config_aliases
from genforce_core.errors import UsageError

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------- --help

# Renders `genforce ... --help` of every (nested) subcommand through main(), as a user does.
HELP_SCRIPT = r'''
import argparse, contextlib, io, json
from genforce_core.cli.main import build_parser, main

def commands(parser, path):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield path + [name], sub
                yield from commands(sub, path + [name])

result = {}
for path, parser in commands(build_parser(), []):
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main([*path, '--help'])
    actions = [dict(options=a.option_strings, name=a.metavar or a.dest, default=repr(a.default),
                    takes_value=a.nargs != 0, required=a.required,
                    suppressed=a.help == argparse.SUPPRESS)
               for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    result[' '.join(path)] = dict(text=out.getvalue(), actions=actions)
print(json.dumps(result))
'''
HELP_SECTIONS = ('positional arguments:', 'options:', 'optional arguments:')


@pytest.fixture(scope='module')
def helps() -> dict:
    proc = subprocess.run([sys.executable, '-c', HELP_SCRIPT], capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def help_entries(text: str) -> dict[str, str]:
    """``{invocation: help text}`` of the argument sections of an argparse help page."""
    entries: dict[str, str] = {}
    section, last = None, None
    for line in text.splitlines():
        if line and not line.startswith(' '):
            section = line if line in HELP_SECTIONS else None
        elif section and re.match(r'  \S', line):
            last, _, rest = line.strip().partition('  ')
            entries[last] = rest.strip()
        elif section and line.strip() and last is not None:
            entries[last] = f'{entries[last]} {line.strip()}'.strip()
    return entries


def entry_of(entries: dict[str, str], options: list[str], name: str) -> tuple[str, str]:
    for invocation, text in entries.items():
        words = re.split(r'[ ,]+', invocation)
        if (options and options[0] in words) or (not options and name in words):
            return invocation, text
    raise AssertionError(f'{options or name} missing from the help page')


@pytest.mark.slow
def test_every_core_and_plugin_subcommand_has_a_help_page(helps):
    expected = {'train', 'test', 'synthesize', 'zoo', 'zoo list', 'zoo download', 'plugins',
                'prepare-dataset', 'resave-checkpoint', 'convert', 'invert', 'fid-stats'}
    assert expected <= set(helps)


def help_problems(command: str, page: dict) -> list[str]:
    """What is missing from one help page: help texts, defaults, plain text."""
    text = page['text']
    problems = [] if text.startswith('usage: genforce ') else ['not a usage page']
    if '``' in text:
        problems.append('reStructuredText markup (``) in --help')
    entries = help_entries(text)
    for action in page['actions']:
        if action['suppressed']:
            continue
        invocation, help_text = entry_of(entries, action['options'], action['name'])
        default = action['default']
        if not help_text:
            problems.append(f'{invocation} has no help text')
        elif not action['options']:
            continue  # positionals: no default to show
        elif default not in ('None', 'False'):
            shown = default.strip("'")
            if 'default' not in help_text.lower() or shown not in help_text:
                problems.append(f'{invocation} does not show its default {shown}')
        elif (action['takes_value'] and not action['required']
              and action['options'] != ['--cfg-options']  # nothing overridden: no default
              and not help_text.startswith('the same as')
              and 'default' not in help_text.lower()):
            problems.append(f'{invocation} does not say what happens without it')
    return [f'genforce {command} --help: {problem}' for problem in problems]


@pytest.mark.slow
def test_help_of_every_subcommand_is_complete_and_plain(helps):
    problems = [p for command, page in sorted(helps.items())
                for p in help_problems(command, page)]
    assert not problems, '\n'.join(problems)


def test_help_entries_parser_sees_a_missing_help():
    parser = argparse.ArgumentParser(prog='genforce x')
    parser.add_argument('--bare', type=int)
    parser.add_argument('--fine', help='has help')
    entries = help_entries(parser.format_help())
    assert entries['--bare BARE'] == '' and entries['--fine FINE'] == 'has help'


def test_help_format_shows_defaults_and_drops_rst_markup():
    from genforce_core.cli.helpfmt import add_command

    sub = argparse.ArgumentParser(prog='genforce').add_subparsers()
    parser = add_command(sub, 'x', description='``genforce x``: does\nthings.')
    parser.add_argument('--size', type=int, default=3, help='the ``size``')
    parser.add_argument('--mode', default='a', help='how (default a, the fast one)')
    parser.add_argument('--flag', action='store_true', help='a switch')
    parser.add_argument('--bare', default=5)
    entries = help_entries(parser.format_help())
    assert '`genforce x`: does\nthings.' in parser.format_help()
    assert entries['--size SIZE'] == 'the `size` (default: 3)'
    assert entries['--mode MODE'] == 'how (default a, the fast one)'
    assert entries['--flag'] == 'a switch'
    assert entries['--bare BARE'] == ''  # no help is not papered over with a default


# --------------------------------------------------------------------------- aliases

def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_synthesize_aliases_parse_to_the_same_values():
    ours = parse('synthesize', 'g.pth', '--out', 'o', '--truncation-psi', '0.5', '--seeds',
                 '0-2')
    nvidia = parse('synthesize', '--network', 'g.pth', '--outdir', 'o', '--trunc', '0.5',
                   '--seeds', '0-2')
    assert network(ours) == network(nvidia) == 'g.pth'
    for key in ('out', 'truncation_psi', 'seeds', 'truncation_cutoff'):
        assert getattr(ours, key) == getattr(nvidia, key), key
    assert nvidia.truncation_psi == 0.5 and nvidia.out == 'o'


def test_options_are_never_abbreviated(capsys):
    with pytest.raises(SystemExit) as exc:
        parse('synthesize', 'g.pth', '--truncation', '0.5')  # once a prefix of two options
    assert exc.value.code == 2
    assert 'unrecognized arguments: --truncation' in capsys.readouterr().err


def test_synthesize_needs_one_generator():
    with pytest.raises(UsageError, match='name the generator'):
        network(parse('synthesize', '--seeds', '1'))
    with pytest.raises(UsageError, match='two generators given: a.pth and --network b.pth'):
        network(parse('synthesize', 'a.pth', '--network', 'b.pth'))


def test_synthesize_labels_for_conditional_models(capsys):
    import torch

    from genforce_core.cli.synthesize import labels
    from genforce_core.errors import GenforceError

    G = SimpleNamespace(c_dim=3)
    assert labels(G, 2, 2, 'cpu').tolist() == [[0, 0, 1]] * 2
    vector = parse('synthesize', 'g.pth', '--label', '0,1,0.5').label
    assert torch.equal(labels(G, None, 1, 'cpu', vector), torch.tensor([[0, 1, 0.5]]))
    for args, message in (((None, 1, 'cpu'), 'pass --class C or --label with 3 values'),
                          ((3, 1, 'cpu'), r'--class 3 is out of range \[0, 3\)'),
                          ((None, 1, 'cpu', [1.0, 0.0]), '--label has 2 values, the model takes')):
        with pytest.raises(GenforceError, match=message):
            labels(G, *args)
    for bad in (['--label', '1,x'], ['--label', '1,nan'], ['--class', '1', '--label', '1']):
        with pytest.raises(SystemExit) as exc:
            parse('synthesize', 'g.pth', *bad)
        assert exc.value.code == 2
    assert 'each --label value must be a finite number' in capsys.readouterr().err


def test_train_aliases_parse_to_the_same_config_options():
    ours = parse('train', 'c.py', '--work-dir', 'w', '--cfg-options',
                 'train_dataloader.dataset.path=d.zip', 'train_cfg.total_kimg=5')
    familiar = parse('train', 'c.py', '--outdir', 'w', '--data', 'd.zip', '--kimg', '5')
    original = parse('train', 'c.py', '--work_dir', 'w', '--data', 'd.zip', '--kimg', '5')
    for args in (ours, familiar, original):
        apply_config_aliases(args)
    assert ours.work_dir == familiar.work_dir == original.work_dir == 'w'
    assert ours.cfg_options == familiar.cfg_options == original.cfg_options == {
        'train_dataloader.dataset.path': 'd.zip', 'train_cfg.total_kimg': 5}
    assert parse('test', 'c.py', 'k.pth', '--work_dir', 'w').work_dir == 'w'


def test_train_alias_and_cfg_option_must_agree():
    args = parse('train', 'c.py', '--kimg', '5', '--cfg-options', 'train_cfg.total_kimg=6')
    with pytest.raises(UsageError, match='--kimg 5.0 and --cfg-options train_cfg.total_kimg=6'):
        apply_config_aliases(args)


@pytest.mark.parametrize('flag,value', [('--kimg', '0'), ('--kimg', '-1'), ('--gpus', '0'),
                                        ('--gpus', 'two')])
def test_train_numbers_must_be_positive(flag, value, capsys):
    with pytest.raises(SystemExit) as exc:
        parse('train', 'c.py', flag, value)
    assert exc.value.code == 2 and flag in capsys.readouterr().err


def test_gpus_with_an_external_launcher_is_refused(capsys):
    assert main(['train', 'c.py', '--gpus', '2', '--launcher', 'pytorch']) == 2
    assert '--gpus 2 starts its own processes' in capsys.readouterr().err


@pytest.fixture(scope='module')
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A genforce checkpoint of a tiny StyleGAN2 generator (random weights, moved w_avg)."""
    from mmengine.config import Config

    from genforce_core.checkpoint import save_checkpoint
    from genforce_core.plugins import load_plugins
    from genforce_core.registry import MODELS
    from genforce_core.stored_config import config_to_data

    load_plugins()
    cfg = Config(dict(model=dict(
        type='GAN', discriminator=None, ema=None,
        generator=dict(type='StyleGAN2Generator', z_dim=8, c_dim=0, w_dim=8, img_resolution=8,
                       img_channels=3, mapping_kwargs=dict(num_layers=1),
                       synthesis_kwargs=dict(channel_base=64, channel_max=16)))))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.generator.mapping.w_avg.normal_()  # so that truncation changes the images
    path = tmp_path_factory.mktemp('tiny') / 'tiny.pth'
    return save_checkpoint({'meta': {'cfg': config_to_data(cfg)},
                            'state_dict': model.state_dict()}, path)


def images(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob('*.png'))}


def test_synthesize_aliases_write_the_same_images(tiny_checkpoint, tmp_path):
    common = ['--seeds', '0-2', '--device', 'cpu']
    assert main(['synthesize', str(tiny_checkpoint), '--out', str(tmp_path / 'ours'),
                 '--truncation-psi', '0.5', *common]) == 0
    assert main(['synthesize', '--network', str(tiny_checkpoint), '--outdir',
                 str(tmp_path / 'nvidia'), '--trunc', '0.5', *common]) == 0
    assert main(['synthesize', str(tiny_checkpoint), '--out', str(tmp_path / 'plain'),
                 *common]) == 0
    ours, nvidia, plain = (images(tmp_path / d) for d in ('ours', 'nvidia', 'plain'))
    assert list(ours) == ['seed0000.png', 'seed0001.png', 'seed0002.png'] == list(nvidia)
    for name in ours:
        assert np.array_equal(ours[name], nvidia[name])
        assert not np.array_equal(ours[name], plain[name]), '--trunc had no effect'


def test_synthesize_a_work_dir_uses_its_latest_checkpoint(tiny_checkpoint, tmp_path, capsys):
    work = tmp_path / 'run'
    work.mkdir()
    shutil.copy(tiny_checkpoint, work / 'iter_4.pth')
    assert main(['synthesize', str(work), '--seeds', '1', '--out', str(tmp_path / 'o'),
                 '--device', 'cpu']) == 0
    assert f'Using {work / "iter_4.pth"}' in capsys.readouterr().out
    assert (tmp_path / 'o' / 'seed0001.png').is_file()


@pytest.mark.parametrize('target,message', [
    ('../../x', 'error: checkpoint ../../x does not exist'),
    ('nowhere/g.pth', 'error: checkpoint nowhere/g.pth does not exist'),
    ('stylegan2-ffhq10', 'did you mean stylegan2-ffhq1024'),
])
def test_synthesize_a_missing_generator_is_one_line(tmp_path, monkeypatch, capsys, target,
                                                    message):
    pytest.importorskip('genforce_converters')  # its zoo names
    monkeypatch.chdir(tmp_path)
    assert main(['synthesize', target]) == 2
    err = capsys.readouterr().err
    assert err.startswith('genforce synthesize: error: ') and message in err
    assert len(err.strip().splitlines()) == 1


def test_original_genforce_converter_names(capsys):
    get_converter = pytest.importorskip('genforce_converters.converters').get_converter

    for alias, name in (('pggan', 'pggan_tf'), ('stylegan', 'stylegan_tf'),
                        ('stylegan2', 'stylegan2_tf')):
        assert get_converter(alias).name == name
        assert type(get_converter(alias)) is type(get_converter(name))
    with pytest.raises(SystemExit):
        main(['convert', '--help'])
    text = ' '.join(capsys.readouterr().out.split())
    assert 'pggan (= pggan_tf), stylegan (= stylegan_tf), stylegan2 (= stylegan2_tf)' in text


def test_convert_accepts_an_alias_on_the_command_line(tmp_path, capsys):
    pytest.importorskip('genforce_converters')
    # The alias reaches the TF converter, which then reports the missing file.
    missing = tmp_path / 'network-snapshot.pkl'
    assert main(['convert', 'stylegan2', '--source_model_path', str(missing),
                 '--output', str(tmp_path / 'o.pth')]) != 0
    err = capsys.readouterr()
    assert 'NVIDIA StyleGAN2 TensorFlow pickle' in err.out
    assert str(missing) in err.err and 'unknown converter' not in err.err


# --------------------------------------------------------------------------- devices

def test_available_devices_start_with_cpu():
    devices = available_devices()
    assert devices[0] == 'cpu'
    assert any(d.startswith('cuda') for d in devices) == torch.cuda.is_available()
    assert check_device('cpu') == torch.device('cpu')


@pytest.mark.parametrize('device,message', [
    ('cuda:99', "device 'cuda:99' is not available"),
    ('nonsense', "'nonsense' is not a torch device name"),
    pytest.param('cuda', "device 'cuda' is not available: torch sees no CUDA device",
                 marks=pytest.mark.skipif(torch.cuda.is_available(), reason='has a GPU')),
    pytest.param('mps', "device 'mps' is not available",
                 marks=pytest.mark.skipif(torch.backends.mps.is_available(), reason='a Mac')),
])
def test_load_generator_on_a_missing_device_fails_before_loading(device, message, tmp_path):
    # The file does not exist either: the device is checked first, before anything is read.
    with pytest.raises(DeviceError) as exc:
        load_generator(tmp_path / 'absent.pth', device=device)
    text = str(exc.value)
    assert message in text and 'this machine has cpu' in text and '\n' not in text


def test_synthesize_on_a_missing_device_is_a_usage_error(tiny_checkpoint, tmp_path, capsys):
    assert main(['synthesize', str(tiny_checkpoint), '--device', 'cuda:99', '--out',
                 str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "genforce synthesize: error: device 'cuda:99' is not available" in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize('flag,value,message', [
    ('--translate', '1', 'expected TX,TY'), ('--translate', '0.1,0.2,0', 'expected TX,TY'),
    ('--translate', 'nan,0', "TX must be a finite number, got 'nan'"),
    ('--translate', '0,x', "TY must be a finite number, got 'x'"),
    ('--rotate', 'x', "must be a finite number, got 'x'"), ('--rotate', 'inf', 'finite'),
])
def test_synthesize_transform_values_are_checked_by_the_parser(flag, value, message, capsys):
    with pytest.raises(SystemExit) as exc:
        parse('synthesize', 'g.pth', flag, value)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f'argument {flag}' in err and message in err


def test_synthesize_transform_values_parse():
    args = parse('synthesize', 'g.pth', '--translate=-0.25, 0.5', '--rotate', '-30')
    assert args.translate == (-0.25, 0.5) and args.rotate == -30.0
    assert parse('synthesize', 'g.pth').translate is None


@pytest.mark.parametrize('flags', [['--translate', '0.1,0'], ['--rotate', '0']])
def test_synthesize_refuses_a_transform_for_a_stylegan2(tiny_checkpoint, tmp_path, capsys,
                                                        flags):
    assert main(['synthesize', str(tiny_checkpoint), *flags, '--device', 'cpu', '--out',
                 str(tmp_path / 'out')]) == 2
    err = capsys.readouterr().err
    assert err.startswith('genforce synthesize: error: Generator cannot translate or rotate '
                          'its images') and f'drop {" ".join(flags)}' in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / 'out').exists()


# --------------------------------------------------------------------------- --gpus N

@pytest.mark.slow
def test_gpus_2_trains_with_two_processes(genforce, example_config, example_plugin_site,
                                          shapes_zip, tiny_dcgan, tmp_path):
    work = tmp_path / 'run'
    tiny = [o for o in tiny_dcgan if not o.startswith('train_dataloader.dataset.path')]
    proc = genforce(['train', str(example_config), '--gpus', '2', '--outdir', str(work),
                     '--data', str(shapes_zip), '--kimg', '0.032', '--cfg-options', *tiny],
                    pythonpath=[example_plugin_site], env=dict(OMP_NUM_THREADS='1'))
    from genforce_core.checkpoint import load_checkpoint

    # Global batch 2 x 4 = 8: 0.032 kimg is 4 iterations (one process would need 8).
    ckpt = load_checkpoint(work / 'iter_4.pth')
    assert ckpt['meta']['iter'] == 4 and int(ckpt['state_dict']['images_seen']) == 32
    assert not (work / 'iter_8.pth').exists()
    if not torch.cuda.is_available():
        assert 'starting 2 CPU processes (gloo)' in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert 'Warning' not in proc.stderr, proc.stderr  # threads set, no pinning without a GPU


@pytest.mark.slow
def test_gpus_n_checks_the_config_before_starting_processes(genforce, example_config,
                                                            example_plugin_site, tmp_path):
    proc = genforce(['train', str(example_config), '--gpus', '2', '--outdir', str(tmp_path),
                     '--data', str(tmp_path / 'missing.zip')],
                    pythonpath=[example_plugin_site], check=False)
    assert proc.returncode == 2, proc.stderr
    assert 'missing.zip' in proc.stderr and 'Traceback' not in proc.stderr
    assert 'starting 2' not in proc.stderr


FAILING_LAUNCH = '''
import sys
from genforce_core.cli.launch_local import launch_local
from genforce_core.cli.main import build_parser
from genforce_core.cli.train import train_worker
args = build_parser().parse_args(['train', 'no_such_config.py'])
sys.exit(launch_local(2, train_worker, args))
'''


@pytest.mark.slow
def test_processes_that_fail_report_their_rank_and_exit_code(tmp_path):
    # Launched directly, skipping the parent's checks: each process meets the bad config.
    proc = subprocess.run([sys.executable, '-c', FAILING_LAUNCH], cwd=tmp_path, timeout=300,
                          capture_output=True, text=True, env=dict(os.environ,
                                                                   OMP_NUM_THREADS='1'))
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert any(line.startswith('genforce train (rank ') and 'no_such_config.py' in line
               for line in lines), proc.stderr
    assert lines[-1].startswith('genforce train: error: ') and 'exit code 2' in lines[-1]
    assert 'Traceback' not in proc.stderr and 'ChildFailedError' not in proc.stderr


def test_a_failing_process_prints_one_line_and_its_exit_code(capsys, monkeypatch):
    from genforce_core.cli.launch_local import _run_worker

    def worker(args):
        raise UsageError('rank-specific problem')

    monkeypatch.setenv('RANK', '1')
    with pytest.raises(SystemExit) as exc:
        _run_worker(worker, argparse.Namespace(verbose=False))
    assert exc.value.code == 2
    assert capsys.readouterr().err == 'genforce train (rank 1): error: rank-specific problem\n'


# --------------------------------------------------------------------------- launch scripts

RECORDER = '''#!/usr/bin/env bash
echo "$0 $*" > "$RECORD"
'''


@pytest.fixture
def repo_copy(tmp_path) -> tuple[Path, dict]:
    """tools/ copied into an empty repository, and an environment without PYTHON whose PATH
    has a recording ``python3`` (and nothing else named python)."""
    root = tmp_path / 'clone'
    shutil.copytree(REPO / 'tools', root / 'tools')
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'python3').write_text(RECORDER)
    (bin_dir / 'python3').chmod(0o755)
    for tool in ('bash', 'dirname', 'env'):
        os.symlink(shutil.which(tool), bin_dir / tool)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHON'}
    env.update(PATH=str(bin_dir), RECORD=str(tmp_path / 'record'))
    return root, env


def called(env: dict) -> str:
    return Path(env['RECORD']).read_text().split()[0]


def make_venv(root: Path) -> Path:
    python = root / '.venv' / 'bin' / 'python'
    python.parent.mkdir(parents=True)
    python.write_text(RECORDER)
    python.chmod(0o755)
    return python


@pytest.mark.skipif(shutil.which('bash') is None, reason='the scripts need bash')
def test_launch_scripts_pick_python_env_then_venv_then_python3(repo_copy, tmp_path):
    root, env = repo_copy
    script = [str(root / 'tools' / 'dist_train.sh'), 'cfg.py', '2']

    subprocess.run(script, env=env, check=True, timeout=60)
    assert called(env) == str(tmp_path / 'bin' / 'python3')  # no .venv: python3 on PATH

    venv = make_venv(root)
    subprocess.run(script, env=env, check=True, timeout=60)
    assert called(env) == str(venv)
    assert Path(env['RECORD']).read_text().split()[1:4] == ['-m', 'torch.distributed.run',
                                                            '--nnodes=1']

    other = tmp_path / 'other-python'
    other.write_text(RECORDER)
    other.chmod(0o755)
    subprocess.run(script, env={**env, 'PYTHON': str(other)}, check=True, timeout=60)
    assert called(env) == str(other)


@pytest.mark.skipif(shutil.which('bash') is None, reason='the scripts need bash')
def test_slurm_scripts_use_the_venv_too(repo_copy, tmp_path):
    root, env = repo_copy
    venv = make_venv(root)
    srun = tmp_path / 'bin' / 'srun'
    srun.write_text('#!/usr/bin/env bash\n'  # skip srun's options (-p takes a value), run the rest
                    'while [[ $1 == -* ]]; do [[ $1 == -p ]] && shift; shift; done\nexec "$@"\n')
    srun.chmod(0o755)
    subprocess.run([str(root / 'tools' / 'slurm_train.sh'), 'p', 'job', 'cfg.py', 'wd'],
                   env={**env, 'GPUS': '1'}, check=True, timeout=60)
    assert called(env) == str(venv)
    assert Path(env['RECORD']).read_text().split()[1:3] == ['-u', str(root / 'tools' /
                                                                       'train.py')]
