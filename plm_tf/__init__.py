"""plm_tf: RoBERTa, ALBERT and ELECTRA pretraining in TensorFlow 2 / Keras 3."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

__version__ = "0.1.0"
