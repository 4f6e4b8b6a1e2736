"""The inversion plugin is found through its entry point, honours the plugin contract,
registers its modules and adds ``genforce invert``."""
from genforce_core.testing import check_plugin_contract, skip_unless_installed

skip_unless_installed('genforce-plugin-inversion')


def test_inversion_plugin_contract():
    check_plugin_contract('inversion', 'genforce-plugin-inversion')


def test_registers_modules_and_the_invert_command():
    import json
    import subprocess
    import sys

    from genforce_core.cli.main import build_parser

    # A fresh process: in this one, other tests may have imported the modules before the
    # plugin was loaded, and registrations are attributed during plugin loading only.
    proc = subprocess.run([sys.executable, '-m', 'genforce_core.cli.main', 'plugins', '--json'],
                          capture_output=True, text=True, timeout=300, check=True)
    info = {p['name']: p for p in json.loads(proc.stdout)}['inversion']
    assert info['status'] == 'loaded'
    assert set(info['registered']['models']) == {'InDomainEncoder', 'ResNetStyleEncoder'}
    assert info['registered']['hooks'] == ['ReconstructionGridHook']
    args = build_parser().parse_args(['invert', 'g.pth', 'a.png', 'b.png', '--steps', '7',
                                      '--w-plus', '--vgg', 'v.pth'])
    assert args.images == ['a.png', 'b.png'] and args.steps == 7 and args.w_plus
    assert args.vgg == 'v.pth' and callable(args.func)


def test_unknown_generator_is_a_clear_cli_error(capsys, tmp_path):
    from genforce_core.cli.main import main

    assert main(['invert', str(tmp_path / 'nothing.pth'), 'x.png']) == 1
    assert 'neither a checkpoint file nor a model-zoo name' in capsys.readouterr().err
    assert main(['invert', 'g.pth', 'x.png', '--steps', '0']) == 1
    assert '--steps 0 needs --encoder' in capsys.readouterr().err


def test_missing_vgg_weights_are_a_clear_cli_error(capsys, tmp_path, gan_checkpoint):
    from genforce_core.cli.main import main

    image = tmp_path / 'x.png'
    from PIL import Image
    Image.new('RGB', (20, 16)).save(image)
    assert main(['invert', str(gan_checkpoint), str(image), '--steps', '3', '--vgg',
                 str(tmp_path / 'no_vgg.pth')]) == 2  # a missing file the user named: bad input
    err = capsys.readouterr().err
    assert 'no_vgg.pth does not exist' in err and 'GENFORCE_VGG16_WEIGHTS' in err
