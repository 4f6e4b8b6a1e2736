"""`python tools/synthesize.py ARGS` is `genforce synthesize ARGS`.

    python tools/synthesize.py stylegan2ada-afhqcat512 --seeds 0-15 --grid --out out/cats
    python tools/synthesize.py work_dirs/x/iter_1000.pth --num 64 --truncation-psi 0.7
"""
import sys

from genforce_core.cli.main import main

if __name__ == '__main__':
    sys.exit(main(['synthesize', *sys.argv[1:]]))
