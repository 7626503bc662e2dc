"""Shared test configuration: quiet TensorFlow, locate ../shared/data when it exists."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
