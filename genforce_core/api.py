"""The public API of genforce-core: everything a plugin (or a user script) may use.

Plugins import the core only from here (``from genforce_core.api import MODELS, GAN``); the
modules behind these names may move between releases, these names stay (within one major
version of :data:`PLUGIN_API_VERSION`). ``lint-imports`` (the ``.importlinter`` contracts)
checks in CI that no plugin imports any other core module, and that the core never imports a
plugin.

The names, by theme:

* **Plugin machinery** — :data:`hookimpl` marks a plugin's hook implementations,
  :data:`PLUGIN_API_VERSION` is what a plugin declares as ``GENFORCE_PLUGIN_API``;
  :func:`load_plugins` discovers and registers the installed plugins (once per process).
* **Registries** — :data:`MODELS`, :data:`LOSSES`, :data:`HOOKS`, :data:`DATASETS`,
  :data:`METRICS`, :data:`CONVERTERS`, :data:`LOOPS`, :data:`RUNNERS`, :data:`MODEL_WRAPPERS`,
  :data:`DATA_SAMPLERS`, :data:`OPTIM_WRAPPER_CONSTRUCTORS`; build inside
  :func:`explaining_misses` to turn an unknown ``type`` into an error that lists close matches.
* **Contracts** — what the core expects of generators, discriminators, losses and
  regularizers, as ``typing.Protocol`` classes (:class:`Generator`, :class:`StyleGenerator`,
  ...), :func:`sampling_options` (truncation honoured or refused, never ignored) and
  :func:`image_transform` (translation/rotation of a :class:`TransformableGenerator`'s images,
  refused for other generators).
* **Errors** — subclass or raise these so that the CLI prints one line and exits with 2/1:
  :class:`GenforceError` and its kinds.
* **Models** — the GAN base model :class:`GAN` (subclass it; override the loss steps), its
  data preprocessors, :class:`GeneratorEMA`, the default losses, :func:`to_uint8`,
  :func:`fade_images`, and the progressive-growing layers (:func:`minibatch_stddev`,
  :func:`pixel_norm`, :func:`upscale`, :func:`downscale`, :func:`split_lod`) and the style
  mixing of style-based generators (:func:`mix_styles`).
* **Training helpers** — gradient/buffer sync across processes, the lazy-regularization ratio,
  :func:`init_distributed` for plugin commands that run distributed.
* **Hook helpers** — the runner helpers the core hooks use (:func:`unwrap_model`,
  :func:`images_seen`, :func:`interval_images`, ...) and the sample-grid layout.
* **Data** — :class:`ImageDataset` and the built-in ``shapes`` data set.
* **Checkpoints and weight files** — safe loading/saving, stored configs, guarded
  ``torch.load`` of third-party weight files.
* **Official TF weights** — layout conversion for networks that keep one parameter per TF
  variable (:func:`load_official_tf`, :func:`official_tf_shapes`, :func:`from_tf`, ...).
* **CUDA ops** — :class:`CudaExtension` (just-in-time build with the reference fallback and
  a self-check against the reference, :func:`kernel_mismatch`), :func:`warn_reference_once`,
  and :func:`reference_ops` / :func:`reference_forced`: the one switch to the reference paths
  that every plugin's op dispatch honours.
* **Command line** — :func:`add_command` adds a ``genforce`` subcommand in the house style.
* **Inference** — :func:`load_generator` and device checks.
* **Testing** — :func:`contract_tests` (the model contract suite for a plugin's tests),
  :func:`check_plugin_contract`, :func:`skip_unless_installed` and the other helpers of
  :mod:`genforce_core.testing`, imported on first use (some need pytest).
"""
from __future__ import annotations

import importlib
from typing import Any

from .checkpoint import (
    describe_state_dict_mismatch,
    load_checkpoint,
    read_genforce_v1_checkpoint,
    save_checkpoint,
    verify_checksums,
)
from .cli.helpfmt import add_command
from .contracts import (
    AdversarialLoss,
    Discriminator,
    DiscriminatorRegularizer,
    Generator,
    GeneratorRegularizer,
    GradientPenaltyLoss,
    LoadsOfficialWeights,
    MappingNetwork,
    ProgressiveNetwork,
    StyleGenerator,
    SynthesisNetwork,
    TrainingModel,
    TransformableGenerator,
    TransformUnsupported,
    TruncationUnsupported,
    accepts_option,
    image_transform,
    progressive_modules,
    sampling_options,
    supports_image_transform,
    supports_truncation,
)
from .cuda_extension import CudaExtension, kernel_mismatch
from .data import ImageDataset, ImageFolderDataset, LMDBDataset, ZipDataset
from .data.builtin import (
    BACKGROUNDS,
    GENERATOR_VERSION,
    NUM_COMBINATIONS,
    SHAPE_CLASSES,
    SHAPE_COLOURS,
    SHAPE_LABEL_DIM,
    make_shapes_images,
    make_shapes_samples,
    shape_combination,
    shape_label,
)
from .engine.distributed import all_reduce_buffers, all_reduce_gradients
from .engine.launch import init_distributed
from .engine.optim import lazy_regularization_ratio
from .errors import CheckpointError, ConfigError, DatasetError, GenforceError, UsageError
from .formatting import format_duration, format_kimg
from .hooks import (
    global_batch_size,
    images_seen,
    interval_images,
    unwrap_model,
    write_text_atomic,
)
from .hooks.grid import grid_shape, make_grid, save_grid
from .hooks.progressive import current_lod, set_lod
from .hookspecs import PLUGIN_API_VERSION, hookimpl
from .inference import DeviceError, available_devices, check_device, load_generator
from .models import (
    GAN,
    GANDataPreprocessor,
    GeneratorEMA,
    NonFiniteLossError,
    NonSaturatingLoss,
    ProgressiveDataPreprocessor,
    R1Penalty,
    fade_images,
    to_uint8,
)
from .models.progressive_layers import (
    downscale,
    minibatch_stddev,
    pixel_norm,
    split_lod,
    upscale,
)
from .models.style_mixing import mix_styles
from .ops import (
    BuildError,
    GenforceOpsWarning,
    op_status,
    reference_forced,
    reference_ops,
    warn_reference_once,
)
from .plugins import PluginManager, load_plugins
from .registry import (
    CONVERTERS,
    DATA_SAMPLERS,
    DATASETS,
    HOOKS,
    LOOPS,
    LOSSES,
    METRICS,
    MODEL_WRAPPERS,
    MODELS,
    OPTIM_WRAPPER_CONSTRUCTORS,
    RUNNERS,
    RegistrationConflict,
    UnknownModuleError,
    explaining_misses,
)
from .stored_config import check_registered_types, config_from_checkpoint, config_to_data
from .tf_weights import from_tf, is_tf_weight, load_official_tf, official_tf_shapes, to_tf
from .weight_files import (
    WeightFileError,
    check_weight_file,
    clean_torch_message,
    is_torchscript_archive,
    is_zip_archive,
    load_torch_weights,
)
from .zoo import ZooError, ensure_converted
from .zoo import list_entries as zoo_entries

# Imported on first use: the testing helpers need pytest, which a plain install lacks.
_LAZY: dict[str, str] = {
    'check_plugin_contract': 'testing',
    'skip_unless_installed': 'testing',
    'requirement': 'testing',
    'find_testdata': 'testing',
    'contract_tests': 'testing',
    'check_model_contract': 'testing',
    'model_cases': 'testing',
    'uncovered_models': 'testing',
    'ModelCase': 'testing',
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f'genforce_core.api has no attribute {name!r}')
    return getattr(importlib.import_module(f'{__package__}.{module}'), name)


__all__ = [
    # plugin machinery
    'PLUGIN_API_VERSION', 'hookimpl', 'load_plugins', 'PluginManager',
    # registries
    'MODELS', 'LOSSES', 'HOOKS', 'DATASETS', 'METRICS', 'CONVERTERS', 'LOOPS', 'RUNNERS',
    'MODEL_WRAPPERS', 'DATA_SAMPLERS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'explaining_misses',
    'RegistrationConflict', 'UnknownModuleError',
    # errors
    'GenforceError', 'ConfigError', 'DatasetError', 'CheckpointError', 'UsageError',
    'WeightFileError', 'ZooError', 'NonFiniteLossError', 'DeviceError', 'BuildError',
    # models
    'GAN', 'GANDataPreprocessor', 'ProgressiveDataPreprocessor', 'GeneratorEMA',
    'NonSaturatingLoss', 'R1Penalty', 'to_uint8', 'fade_images',
    # progressive-growing layers (PGGAN, StyleGAN)
    'pixel_norm', 'minibatch_stddev', 'upscale', 'downscale', 'split_lod',
    # style-based generators
    'mix_styles',
    # training helpers
    'all_reduce_buffers', 'all_reduce_gradients', 'lazy_regularization_ratio',
    'init_distributed',
    # hook helpers
    'unwrap_model', 'images_seen', 'global_batch_size', 'interval_images',
    'write_text_atomic', 'format_kimg', 'format_duration', 'grid_shape', 'make_grid',
    'save_grid', 'set_lod', 'current_lod',
    # data
    'ImageDataset', 'ImageFolderDataset', 'ZipDataset', 'LMDBDataset', 'make_shapes_images',
    'make_shapes_samples', 'SHAPE_CLASSES', 'SHAPE_COLOURS', 'BACKGROUNDS', 'GENERATOR_VERSION',
    'NUM_COMBINATIONS', 'shape_combination', 'SHAPE_LABEL_DIM', 'shape_label',
    # checkpoints, stored configs, weight files, model zoo
    'load_checkpoint', 'save_checkpoint', 'verify_checksums', 'describe_state_dict_mismatch',
    'read_genforce_v1_checkpoint', 'config_to_data', 'config_from_checkpoint',
    'check_registered_types', 'check_weight_file', 'load_torch_weights', 'clean_torch_message',
    'is_zip_archive', 'is_torchscript_archive', 'zoo_entries', 'ensure_converted',
    # official TensorFlow variables (one parameter per TF variable)
    'from_tf', 'to_tf', 'is_tf_weight', 'official_tf_shapes', 'load_official_tf',
    # CUDA ops
    'CudaExtension', 'kernel_mismatch', 'warn_reference_once', 'op_status',
    'GenforceOpsWarning', 'reference_ops', 'reference_forced',
    # contracts (typing.Protocol) and the sampling options they imply
    'Generator', 'MappingNetwork', 'SynthesisNetwork', 'StyleGenerator', 'Discriminator',
    'ProgressiveNetwork', 'AdversarialLoss', 'GradientPenaltyLoss', 'DiscriminatorRegularizer',
    'GeneratorRegularizer', 'TrainingModel', 'LoadsOfficialWeights', 'TruncationUnsupported',
    'accepts_option', 'supports_truncation', 'sampling_options', 'progressive_modules',
    'TransformableGenerator', 'TransformUnsupported', 'supports_image_transform',
    'image_transform',
    # command line
    'add_command',
    # inference
    'load_generator', 'check_device', 'available_devices',
    # testing (lazy)
    *_LAZY,
]
