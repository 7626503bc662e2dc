"""Finding and parsing gin files, with one readable error for a missing file or a mistyped binding.

gin files live in the repository's top-level `gin/` folder (installed as `plm_tf/gin`). A `--gin_file` may be
a path, or a name relative to that folder (`electra_small.gin`), and `include` lines inside gin files are
resolved relative to it.
"""
import importlib.util  # noqa: F401  gin's include resolution calls importlib.util without importing it
import logging
import os

import gin

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# Every module that registers gin configurables. `parse_gin` imports them all first, so any gin file may bind
# any of them (a converted model.gin binds `finetune.*` and `pretrain.*`) without `import` lines, and no
# configurable is registered after the config is locked.
CONFIGURABLE_MODULES = (
    "plm_tf.models.configs", "plm_tf.models.builders", "plm_tf.data.assets", "plm_tf.data.pipelines",
    "plm_tf.training.precision",
    "plm_tf.training.distribution", "plm_tf.training.optimizers", "plm_tf.training.schedules",
    "plm_tf.training.trainer", "plm_tf.finetuning.optimization", "plm_tf.finetuning.trainer",
)


class ConfigError(ValueError):
    """A gin file or binding that cannot be used; the message says which and why."""


def gin_dir():
    """The folder holding plm_tf's gin files (repository checkout or installed package)."""
    for candidate in (os.path.join(os.path.dirname(_PACKAGE_DIR), "gin"), os.path.join(_PACKAGE_DIR, "gin")):
        if os.path.isdir(candidate):
            return candidate
    raise ConfigError("plm_tf's gin folder is missing from this installation.")


def resolve_gin_file(path):
    """A path as given if it exists, else the same name under `gin_dir()`; ConfigError when neither exists."""
    if os.path.exists(path):
        return os.path.abspath(path)
    candidate = os.path.join(gin_dir(), path)
    if os.path.exists(candidate):
        return candidate
    raise ConfigError(f"gin file {path!r} not found (looked in the working directory and in {gin_dir()}).")


def parse_gin(gin_files=(), bindings=(), finalize=True):
    """Clears gin, then parses `gin_files` and `bindings` (strings like "encoder_config.hidden_size = 64").

    Every module of CONFIGURABLE_MODULES is imported first.

    Raises:
        ConfigError: a missing file, an unknown configurable or parameter, or a malformed binding.
    """
    import importlib

    for module in CONFIGURABLE_MODULES:
        importlib.import_module(module)
    gin.clear_config()
    gin.add_config_file_search_path(gin_dir())
    files = [resolve_gin_file(path) for path in gin_files]
    root_logger = logging.getLogger()
    root_logger.addFilter(_drop_gin_include_probes)
    try:
        gin.parse_config_files_and_bindings(files, list(bindings), finalize_config=finalize)
    except (ValueError, SyntaxError, IOError) as error:
        message = str(error).strip().splitlines()
        raise ConfigError("Invalid gin configuration: " + " ".join(line.strip() for line in message if line)) from None
    finally:
        root_logger.removeFilter(_drop_gin_include_probes)


def _drop_gin_include_probes(record):
    """gin logs an error for every `include` it first looks for as a Python package path; those are noise."""
    return not record.pathname.endswith(os.path.join("gin", "resource_reader.py"))


def query_or_none(name):
    """The value bound to `name` ("configurable.parameter") with macros such as %OBJECTIVE evaluated, or None
    when nothing binds it."""
    try:
        value = gin.query_parameter(name)
    except ValueError:
        return None
    if isinstance(value, gin.config.ConfigurableReference):
        value = value.scoped_configurable_fn()
    return value
