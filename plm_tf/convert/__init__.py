"""Checkpoint conversion: Hugging Face (safetensors) and Google TF1 checkpoints of BERT, RoBERTa, ALBERT and
ELECTRA into plm_tf, and plm_tf back out to Hugging Face. See `python -m plm_tf.convert --help`,
plm_tf.convert.hf (HF name map), plm_tf.convert.tf1 (TF1 name map) and plm_tf.convert.common (the layout of
a converted model folder).
"""
from plm_tf.convert.common import FAMILIES, ConversionError, ModelSpec, build_model, read_plm_tf
from plm_tf.convert.hf import hf_to_plm_tf, plm_tf_to_hf
from plm_tf.convert.tf1 import tf1_to_plm_tf
