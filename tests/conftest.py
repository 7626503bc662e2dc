"""Shared test configuration: quiet TensorFlow, make `tests/testing_utils.py` importable, and give every test
a clean gin configuration and the float32 Keras policy (both are process-global)."""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gin  # noqa: E402
import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolate_global_configuration():
    yield
    gin.clear_config()
    keras.mixed_precision.set_global_policy("float32")
