"""`python tools/convert_model.py FORMAT --source_model_path PATH [--output OUT]
[--test_num N] [--save_test_image]` is `genforce convert ...` (the original GenForce interface).

FORMAT is a converter of the converters plugin (genforce-plugin-converters): stylegan2ada_pth,
stylegan2_tf, stylegan2ada_tf, stylegan_tf, pggan_tf, stylegan2_rosinality, genforce_v1, or the
original GenForce names pggan, stylegan, stylegan2 (= pggan_tf, stylegan_tf, stylegan2_tf).
"""
import sys

from genforce_core.cli.main import main
from genforce_core.plugins import load_plugins

if __name__ == '__main__':
    if 'converters' not in load_plugins().plugins:
        sys.exit('convert_model.py needs the converters plugin: pip install plugins/converters '
                 '(genforce-plugin-converters)')
    sys.exit(main(['convert', *sys.argv[1:]]))
