"""Pretraining models: masked LM (RoBERTa), MLM + NSP (BERT), MLM + SOP (ALBERT), and ELECTRA.

`objective` names are shared with the data pipeline (`plm_tf.data.pipelines`):
- "mlm": RoBERTa, masked LM only (fairseq `masked_lm` task).
- "mlm_nsp": BERT baseline, masked LM + next-sentence prediction (google-research/bert `run_pretraining.py`).
- "mlm_sop": ALBERT, masked LM + sentence-order prediction (google-research/albert `run_pretraining.py`).
- "electra": replaced-token detection with a generator (google-research/electra `run_pretraining.py`).

Models return logits and, for ELECTRA, the sampled replacements and discriminator labels; losses and metrics
live in `plm_tf.models.objectives` so the train loop can normalise them over the global batch.
"""
import keras
from keras import ops

from plm_tf.layers.classification_head import sentence_pair_head
from plm_tf.layers.discriminator_head import ReplacedTokenHead
from plm_tf.layers.masked_lm_head import MaskedLMHead
from plm_tf.models.configs import generator_config
from plm_tf.models.encoder import TransformerEncoder
from plm_tf.models.sampling import gumbel_max_sample, scatter_at_positions

OBJECTIVES = ("mlm", "mlm_nsp", "mlm_sop", "electra")
_SENTENCE_LABEL = {"mlm_nsp": "next_sentence_label", "mlm_sop": "sentence_order_label"}


def _masked_lm_head(config, name):
    return MaskedLMHead(
        config["vocab_size"],
        config["embedding_size"],
        activation=config["activation"],
        layer_norm_epsilon=config["layer_norm_epsilon"],
        initializer_range=config["initializer_range"],
        name=name,
    )


@keras.saving.register_keras_serializable(package="plm_tf")
class MaskedLMPretrainer(keras.Model):
    """Encoder + tied masked-LM head [+ NSP / SOP head on the pooler].

    Args:
        encoder_config: `TransformerEncoder` keyword arguments (see `plm_tf.models.configs.encoder_config`).
        objective: "mlm", "mlm_nsp" or "mlm_sop".

    Call args:
        features: dict with "input_ids", "input_mask", "segment_ids" int [B, T] and "masked_lm_positions"
            int [B, P].

    Returns:
        dict with "mlm_logits" float [B, P, V], "sequence_output" float [B, T, H] and, for NSP/SOP,
        "sentence_logits" float [B, 2] (the label semantics are the pipeline's `next_sentence_label` /
        `sentence_order_label`).
    """

    def __init__(self, encoder_config, objective="mlm", **kwargs):
        super().__init__(**kwargs)
        if objective not in OBJECTIVES[:3]:
            raise ValueError(f"MaskedLMPretrainer objective must be one of {OBJECTIVES[:3]}, got {objective!r}.")
        if objective != "mlm" and not encoder_config.get("use_pooler", True):
            raise ValueError(f"objective {objective!r} needs the pooler: set encoder_config.use_pooler = True.")
        self.encoder_config = dict(encoder_config)
        self.objective = objective
        self.encoder = TransformerEncoder(**self.encoder_config, name="encoder")
        self.masked_lm_head = _masked_lm_head(self.encoder_config, "masked_lm_head")
        self.sentence_head = None
        if objective in _SENTENCE_LABEL:
            self.sentence_head = sentence_pair_head(
                name="sentence_head", initializer_range=self.encoder_config["initializer_range"]
            )

    @property
    def sentence_label_key(self):
        """Feature name of the sentence-level label, or None for "mlm"."""
        return _SENTENCE_LABEL.get(self.objective)

    def build(self, input_shape=None):
        self.encoder.build()
        self.masked_lm_head.build((None, None, self.encoder.hidden_size))
        if self.sentence_head is not None:
            self.sentence_head.build((None, self.encoder.hidden_size))
        self.built = True

    def call(self, features, training=False):
        encoded = self.encoder(features, training=training)
        outputs = {
            "sequence_output": encoded["sequence_output"],
            "mlm_logits": self.masked_lm_head(
                encoded["sequence_output"], self.encoder.embedding_table, features["masked_lm_positions"]
            ),
        }
        if self.sentence_head is not None:
            outputs["sentence_logits"] = self.sentence_head(encoded["pooled_output"], training=training)
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(encoder_config=self.encoder_config, objective=self.objective)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="plm_tf")
class ElectraPretrainer(keras.Model):
    """ELECTRA: a small masked-LM generator feeds a replaced-token-detection discriminator.

    Args:
        encoder_config: the discriminator's `TransformerEncoder` arguments (its pooler is dropped: ELECTRA has
            none).
        generator_hidden_fraction: generator width as a fraction of the discriminator's (Small 1/4, Base 1/3,
            Large 1/4; 1.0 is the paper's full-size-generator ablation). See `configs.generator_config`.
        tie_embeddings: share the whole embedding block (word/position/type tables and their LayerNorm) between
            the towers, as ELECTRA does; False gives the generator its own ("untied" ablation, §3.2).
        temperature: sampling temperature of the generator (ELECTRA `temperature` = 1.0).

    Call args:
        features: pipeline batch with "input_ids" (already masked), "input_mask", "segment_ids" int [B, T],
            "masked_lm_positions", "masked_lm_ids" int [B, P], "masked_lm_weights" float [B, P].
        sampling_seed: int32 [2] seed of the Gumbel noise (the train loop derives it from (seed, step)).

    Returns:
        dict with "mlm_logits" float [B, P, V] (generator), "sampled_ids" int32 [B, P],
        "discriminator_input_ids" int32 [B, T] (masked positions filled with samples),
        "discriminator_labels" int32 [B, T] (1 where the token differs from the original, 0 elsewhere,
        including where the generator sampled the original token), "discriminator_logits" float [B, T],
        "sequence_output" float [B, T, H] of the discriminator.
    """

    def __init__(self, encoder_config, generator_hidden_fraction=0.25, tie_embeddings=True, temperature=1.0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < generator_hidden_fraction <= 1.0:
            raise ValueError(f"generator_hidden_fraction must be in (0, 1], got {generator_hidden_fraction}.")
        self.encoder_config = dict(encoder_config, use_pooler=False)
        self.generator_hidden_fraction = generator_hidden_fraction
        self.tie_embeddings = tie_embeddings
        self.temperature = temperature
        self.discriminator = TransformerEncoder(**self.encoder_config, name="discriminator")
        self.generator = TransformerEncoder(
            **generator_config(self.encoder_config, generator_hidden_fraction),
            embeddings=self.discriminator.embeddings if tie_embeddings else None,
            name="generator",
        )
        self.generator_head = _masked_lm_head(self.encoder_config, "generator_head")
        self.discriminator_head = ReplacedTokenHead(
            self.encoder_config["hidden_size"],
            activation=self.encoder_config["activation"],
            initializer_range=self.encoder_config["initializer_range"],
            name="discriminator_head",
        )

    def build(self, input_shape=None):
        self.discriminator.build()
        self.generator.build()
        self.generator_head.build((None, None, self.generator.hidden_size))
        self.discriminator_head.build((None, None, self.discriminator.hidden_size))
        self.built = True

    def call(self, features, training=False, sampling_seed=None):
        if sampling_seed is None:
            raise ValueError("ElectraPretrainer needs sampling_seed (int32 [2]) for the generator's samples.")
        generated = self.generator(features, training=training)
        mlm_logits = self.generator_head(
            generated["sequence_output"], self.generator.embedding_table, features["masked_lm_positions"]
        )
        sampled_ids = gumbel_max_sample(mlm_logits, sampling_seed, self.temperature)
        weights = features["masked_lm_weights"]
        positions = features["masked_lm_positions"]
        original_ids, _ = scatter_at_positions(features["input_ids"], positions, features["masked_lm_ids"], weights)
        fake_ids, _ = scatter_at_positions(features["input_ids"], positions, sampled_ids, weights)
        labels = ops.cast(ops.not_equal(fake_ids, original_ids), "int32") * ops.cast(features["input_mask"], "int32")
        discriminated = self.discriminator(
            {"input_ids": fake_ids, "input_mask": features["input_mask"], "segment_ids": features.get("segment_ids")},
            training=training,
        )
        return {
            "mlm_logits": mlm_logits,
            "sampled_ids": sampled_ids,
            "discriminator_input_ids": fake_ids,
            "discriminator_labels": labels,
            "discriminator_logits": self.discriminator_head(discriminated["sequence_output"]),
            "sequence_output": discriminated["sequence_output"],
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            encoder_config=self.encoder_config,
            generator_hidden_fraction=self.generator_hidden_fraction,
            tie_embeddings=self.tie_embeddings,
            temperature=self.temperature,
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
