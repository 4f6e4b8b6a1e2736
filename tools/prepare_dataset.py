"""Convert a folder of images into a zip or LMDB dataset (same as `genforce prepare-dataset`)."""
import sys

from genforce_core.cli.main import main

if __name__ == '__main__':
    sys.exit(main(['prepare-dataset', *sys.argv[1:]]))
