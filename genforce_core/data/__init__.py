"""Image datasets (folder / zip / LMDB), the resumable sampler, the writer and built-in data."""
from .builtin import ensure_builtin_dataset, make_shapes_images
from .datasets import ImageDataset, ImageFolderDataset, LMDBDataset, ZipDataset
from .labels import load_labels_file
from .readers import FolderReader, LMDBReader, ZipReader, open_reader
from .sampler import ResumableInfiniteSampler
from .writer import read_dataset_meta, write_dataset

__all__ = [
    'ImageDataset', 'ImageFolderDataset', 'ZipDataset', 'LMDBDataset',
    'ResumableInfiniteSampler', 'write_dataset', 'read_dataset_meta', 'load_labels_file',
    'ensure_builtin_dataset', 'make_shapes_images', 'open_reader', 'FolderReader', 'ZipReader',
    'LMDBReader',
]
