"""Encoders and pretraining models."""
from plm_tf.models.builders import build_electra, build_pretraining_model
from plm_tf.models.configs import encoder_config, generator_config
from plm_tf.models.encoder import SHARING_MODES, TransformerEncoder
from plm_tf.models.pretraining import OBJECTIVES, ElectraPretrainer, MaskedLMPretrainer
