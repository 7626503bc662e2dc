"""Original Google TF1 checkpoints → plm_tf.

A random plm_tf model's weights are written under the variable names of google-research/bert, albert and
electra — spelled out here, independently of plm_tf.convert.tf1 — with `tf.raw_ops.SaveV2` (plus optimizer
slots and a global step, as real checkpoints have), converted, and the converted model must compute exactly
what the original does.
"""
import json
import os
import tempfile
import unittest

import numpy as np
import tensorflow as tf

try:  # the `hf` extra: transformers' own TF1 loaders are an independent reading of the same names
    import torch
    import transformers
except ImportError:
    torch = transformers = None

from plm_tf.convert import ConversionError, tf1_to_plm_tf
from plm_tf.convert.common import ModelSpec, build_model

BATCH, LENGTH = 2, 9


def encoder_config(**overrides):
    config = dict(vocab_size=53, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=48, embedding_size=32,
                  max_position_embeddings=24, type_vocab_size=2, position_offset=0, activation="gelu_tanh",
                  layer_norm_epsilon=1e-12, dropout_rate=0.1, attention_dropout_rate=0.1, initializer_range=0.02,
                  share="none", num_hidden_groups=1, inner_group_num=1, use_pooler=True)
    config.update(overrides)
    return config


def random_model(spec, seed):
    tf.keras.utils.set_random_seed(seed)
    model = build_model(spec)
    for variable in model.weights:
        variable.assign(variable + tf.random.normal(variable.shape, stddev=0.2))
    return model


def _dense(out, name, layer):
    out[f"{name}/kernel"] = layer.kernel.numpy()
    out[f"{name}/bias"] = layer.bias.numpy()


def _norm(out, name, layer):
    out[f"{name}/gamma"] = layer.gamma.numpy()
    out[f"{name}/beta"] = layer.beta.numpy()


def bert_style_encoder(out, encoder, scope, with_embeddings=True):
    """google-research/bert modeling.py (and electra's copy of it) variable names."""
    if with_embeddings:
        e = encoder.embeddings
        out[f"{scope}/embeddings/word_embeddings"] = e.word_embeddings.numpy()
        out[f"{scope}/embeddings/position_embeddings"] = e.position_embeddings.numpy()
        out[f"{scope}/embeddings/token_type_embeddings"] = e.token_type_embeddings.numpy()
        _norm(out, f"{scope}/embeddings/LayerNorm", e.layer_norm)
    if encoder.embedding_projection is not None:
        _dense(out, f"{scope}/embeddings_project", encoder.embedding_projection)
    for i, block in enumerate(encoder.blocks):
        att, ffn = block.attention_sublayer, block.feed_forward_sublayer
        for part in ("query", "key", "value"):
            _dense(out, f"{scope}/encoder/layer_{i}/attention/self/{part}", getattr(att.attention, part))
        _dense(out, f"{scope}/encoder/layer_{i}/attention/output/dense", att.attention.output_dense)
        _norm(out, f"{scope}/encoder/layer_{i}/attention/output/LayerNorm", att.layer_norm)
        _dense(out, f"{scope}/encoder/layer_{i}/intermediate/dense", ffn.intermediate)
        _dense(out, f"{scope}/encoder/layer_{i}/output/dense", ffn.output_dense)
        _norm(out, f"{scope}/encoder/layer_{i}/output/LayerNorm", ffn.layer_norm)
    if encoder.pooler is not None:
        _dense(out, f"{scope}/pooler/dense", encoder.pooler)


def albert_encoder(out, encoder):
    """google-research/albert modeling.py variable names."""
    e = encoder.embeddings
    out["bert/embeddings/word_embeddings"] = e.word_embeddings.numpy()
    out["bert/embeddings/position_embeddings"] = e.position_embeddings.numpy()
    out["bert/embeddings/token_type_embeddings"] = e.token_type_embeddings.numpy()
    _norm(out, "bert/embeddings/LayerNorm", e.layer_norm)
    _dense(out, "bert/encoder/embedding_hidden_mapping_in", encoder.embedding_projection)
    for g in range(encoder.num_hidden_groups):
        for k in range(encoder.inner_group_num):
            block = encoder.blocks[g * encoder.inner_group_num + k]
            base = f"bert/encoder/transformer/group_{g}/inner_group_{k}"
            att, ffn = block.attention_sublayer, block.feed_forward_sublayer
            for part in ("query", "key", "value"):
                _dense(out, f"{base}/attention_1/self/{part}", getattr(att.attention, part))
            _dense(out, f"{base}/attention_1/output/dense", att.attention.output_dense)
            _norm(out, f"{base}/LayerNorm", att.layer_norm)
            _dense(out, f"{base}/ffn_1/intermediate/dense", ffn.intermediate)
            _dense(out, f"{base}/ffn_1/intermediate/output/dense", ffn.output_dense)
            _norm(out, f"{base}/LayerNorm_1", ffn.layer_norm)
    _dense(out, "bert/pooler/dense", encoder.pooler)


def bert_heads(out, model):
    """run_pretraining.py get_masked_lm_output / get_next_sentence_output."""
    _dense(out, "cls/predictions/transform/dense", model.masked_lm_head.dense)
    _norm(out, "cls/predictions/transform/LayerNorm", model.masked_lm_head.layer_norm)
    out["cls/predictions/output_bias"] = model.masked_lm_head.output_bias.numpy()
    out["cls/seq_relationship/output_weights"] = model.sentence_head.classifier.kernel.numpy().T  # [2, H]
    out["cls/seq_relationship/output_bias"] = model.sentence_head.classifier.bias.numpy()


def electra_tensors(model):
    """google-research/electra run_pretraining.py: electra/, generator/ (tied embeddings), heads."""
    out = {}
    bert_style_encoder(out, model.discriminator, "electra")
    bert_style_encoder(out, model.generator, "generator", with_embeddings=False)
    _dense(out, "discriminator_predictions/dense", model.discriminator_head.dense)
    _dense(out, "discriminator_predictions/dense_1", model.discriminator_head.prediction)
    _dense(out, "generator_predictions/dense", model.generator_head.dense)
    _norm(out, "generator_predictions/LayerNorm", model.generator_head.layer_norm)
    out["generator_predictions/output_bias"] = model.generator_head.output_bias.numpy()
    return out


def write_tf1(prefix, tensors, optimizer_slots=True):
    """A TF1-style name-based checkpoint (no object graph), with Adam slots and a global step."""
    tensors = dict(tensors)
    if optimizer_slots:
        for name in list(tensors)[:3]:
            tensors[f"{name}/adam_m"] = np.zeros_like(tensors[name])
            tensors[f"{name}/adam_v"] = np.ones_like(tensors[name])
        tensors["global_step"] = np.array(1000, np.int64)
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[name]) for name in names])
    return prefix


def make_features(vocab_size, seed):
    rng = np.random.default_rng(seed)
    mask = np.ones((BATCH, LENGTH), np.int32)
    mask[1, 5:] = 0
    return {
        "input_ids": tf.constant(rng.integers(1, vocab_size, (BATCH, LENGTH)) * mask, tf.int32),
        "input_mask": tf.constant(mask),
        "segment_ids": tf.constant(rng.integers(0, 2, (BATCH, LENGTH)) * mask, tf.int32),
        "masked_lm_positions": tf.tile(tf.range(LENGTH)[None], [BATCH, 1]),
    }


class TF1ConversionTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())
        os.makedirs(os.path.join(self.dir, "tf1"))

    def tf1_prefix(self):
        return os.path.join(self.dir, "tf1", "model.ckpt-1000")

    def write_config(self, name, **values):
        with open(os.path.join(self.dir, "tf1", name), "w") as handle:
            json.dump(values, handle)

    def assert_same_encoder(self, original, converted, feats):
        a, b = original(feats), converted(feats)
        self.assertAllClose(a["embedding_output"], b["embedding_output"], atol=1e-6, rtol=0)
        for x, y in zip(a["encoder_outputs"], b["encoder_outputs"], strict=True):
            self.assertAllClose(x, y, atol=1e-6, rtol=0)

    def test_bert_pretraining_checkpoint_with_config(self):
        spec = ModelSpec("bert", encoder_config(), "mlm_nsp")
        original = random_model(spec, 0)
        tensors = {}
        bert_style_encoder(tensors, original.encoder, "bert")
        bert_heads(tensors, original)
        write_tf1(self.tf1_prefix(), tensors)
        self.write_config("bert_config.json", vocab_size=53, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=48, hidden_act="gelu", max_position_embeddings=24, type_vocab_size=2,
                          hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, initializer_range=0.02)
        with open(os.path.join(self.dir, "tf1", "vocab.txt"), "w") as handle:
            handle.write("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n")
        converted, converted_spec = tf1_to_plm_tf(os.path.join(self.dir, "tf1"), os.path.join(self.dir, "out"), "bert")
        self.assertEqual(converted_spec.objective, "mlm_nsp")
        self.assertEqual(converted_spec.encoder_config["activation"], "gelu_tanh")  # BERT's gelu is the tanh form
        self.assertEqual(converted_spec.encoder_config["num_heads"], 4)  # from the config, not H / 64
        self.assertTrue(os.path.exists(os.path.join(self.dir, "out", "vocab.txt")))
        feats = make_features(53, 0)
        self.assert_same_encoder(original.encoder, converted.encoder, feats)
        a, b = original(feats), converted(feats)
        self.assertAllClose(a["mlm_logits"], b["mlm_logits"], atol=1e-6, rtol=0)
        self.assertAllClose(a["sentence_logits"], b["sentence_logits"], atol=1e-6, rtol=0)

    def test_albert_groups_from_tf_hub_module(self):
        config = encoder_config(embedding_size=8, num_layers=4, share="all", num_hidden_groups=2, inner_group_num=2,
                                dropout_rate=0.0, attention_dropout_rate=0.0)
        spec = ModelSpec("albert", config, "mlm_sop")
        original = random_model(spec, 1)
        tensors = {}
        albert_encoder(tensors, original.encoder)
        bert_heads(tensors, original)
        write_tf1(self.tf1_prefix(), {f"module/{name}": value for name, value in tensors.items()}, False)
        self.write_config("albert_config.json", vocab_size=53, embedding_size=8, hidden_size=32, num_hidden_layers=4,
                          num_hidden_groups=2, inner_group_num=2, num_attention_heads=4, intermediate_size=48,
                          hidden_act="gelu", max_position_embeddings=24, type_vocab_size=2, hidden_dropout_prob=0,
                          attention_probs_dropout_prob=0)
        converted, converted_spec = tf1_to_plm_tf(self.tf1_prefix(), os.path.join(self.dir, "out"), "albert")
        self.assertEqual(converted_spec.objective, "mlm_sop")
        self.assertEqual(converted.encoder.block_schedule, original.encoder.block_schedule)
        feats = make_features(53, 1)
        self.assert_same_encoder(original.encoder, converted.encoder, feats)
        a, b = original(feats), converted(feats)
        self.assertAllClose(a["mlm_logits"], b["mlm_logits"], atol=1e-6, rtol=0)
        self.assertAllClose(a["sentence_logits"], b["sentence_logits"], atol=1e-6, rtol=0)

    def test_electra_generator_and_discriminator_without_config(self):
        config = encoder_config(hidden_size=64, num_heads=1, intermediate_size=96, embedding_size=16,
                                activation="gelu_exact", use_pooler=False)
        spec = ModelSpec("electra", config, "electra", generator_hidden_fraction=0.25)
        original = random_model(spec, 2)
        write_tf1(self.tf1_prefix(), electra_tensors(original))
        converted, converted_spec = tf1_to_plm_tf(self.tf1_prefix(), os.path.join(self.dir, "out"), "electra")
        self.assertEqual(converted_spec.generator_hidden_fraction, 0.25)
        self.assertTrue(converted_spec.tie_embeddings)
        self.assertEqual(converted_spec.encoder_config["activation"], "gelu_exact")  # ELECTRA's gelu is erf
        self.assertEqual(converted_spec.encoder_config["num_heads"], 1)  # 64 / 64
        feats = make_features(53, 2)
        self.assert_same_encoder(original.discriminator, converted.discriminator, feats)
        self.assert_same_encoder(original.generator, converted.generator, feats)
        seed = tf.constant([3, 4], tf.int32)
        feats.update(masked_lm_positions=feats["masked_lm_positions"][:, :3], masked_lm_ids=feats["input_ids"][:, :3],
                     masked_lm_weights=tf.ones((BATCH, 3)))
        a, b = original(feats, sampling_seed=seed), converted(feats, sampling_seed=seed)
        for key in ("mlm_logits", "discriminator_logits"):
            self.assertAllClose(a[key], b[key], atol=1e-6, rtol=0)
        self.assertAllEqual(a["sampled_ids"], b["sampled_ids"])

    def test_bert_checkpoint_without_heads_is_a_bare_encoder(self):
        spec = ModelSpec("bert", encoder_config(hidden_size=64, embedding_size=64, num_heads=1), None)
        original = random_model(spec, 3)
        tensors = {}
        bert_style_encoder(tensors, original, "bert")
        write_tf1(self.tf1_prefix(), tensors)
        converted, converted_spec = tf1_to_plm_tf(self.tf1_prefix(), os.path.join(self.dir, "out"), "bert")
        self.assertIsNone(converted_spec.objective)
        feats = make_features(53, 3)
        self.assert_same_encoder(original, converted, feats)
        self.assertAllClose(original(feats)["pooled_output"], converted(feats)["pooled_output"], atol=1e-6, rtol=0)

    def test_albert_without_config_asks_for_it(self):
        config = encoder_config(embedding_size=8, share="all")
        original = random_model(ModelSpec("albert", config, "mlm_sop"), 4)
        tensors = {}
        albert_encoder(tensors, original.encoder)
        write_tf1(self.tf1_prefix(), tensors)
        with self.assertRaisesRegex(ConversionError, "does not record its depth.*--config"):
            tf1_to_plm_tf(self.tf1_prefix(), os.path.join(self.dir, "out"), "albert")


def torch_run(model, feats, **kwargs):
    with torch.no_grad():
        return model(input_ids=torch.tensor(feats["input_ids"].numpy(), dtype=torch.long),
                     attention_mask=torch.tensor(feats["input_mask"].numpy(), dtype=torch.long),
                     token_type_ids=torch.tensor(feats["segment_ids"].numpy(), dtype=torch.long),
                     output_hidden_states=True, **kwargs)


@unittest.skipIf(torch is None, "needs the hf extra (torch, transformers)")
class TF1AgainstTransformersTest(tf.test.TestCase):
    """The same TF1 checkpoint read by transformers' `load_tf_weights_in_*` and by plm_tf: same outputs."""

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())
        self.prefix = os.path.join(self.dir, "model.ckpt")

    def assert_parity(self, hf_out, encoder, feats, inner=1):
        mask = feats["input_mask"].numpy().astype(bool)
        out = encoder(feats)
        states = [out["embedding_output"]] + out["encoder_outputs"][inner - 1::inner]
        self.assertLen(states, len(hf_out.hidden_states))
        for expected, actual in zip(hf_out.hidden_states, states):
            self.assertAllClose(expected.numpy()[mask], actual.numpy()[mask], atol=1e-5, rtol=0)
        return out

    def test_bert(self):
        original = random_model(ModelSpec("bert", encoder_config(), "mlm_nsp"), 5)
        tensors = {}
        bert_style_encoder(tensors, original.encoder, "bert")
        bert_heads(tensors, original)
        write_tf1(self.prefix, tensors)
        with open(os.path.join(self.dir, "bert_config.json"), "w") as handle:
            json.dump({"num_attention_heads": 4, "hidden_act": "gelu"}, handle)
        model, _ = tf1_to_plm_tf(self.prefix, os.path.join(self.dir, "out"), "bert")
        config = transformers.BertConfig(vocab_size=53, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                         intermediate_size=48, max_position_embeddings=24, hidden_act="gelu_new",
                                         attn_implementation="eager")
        hf = transformers.models.bert.modeling_bert.load_tf_weights_in_bert(
            transformers.BertForPreTraining(config).eval(), config, self.prefix)
        feats = make_features(53, 5)
        hf_out = torch_run(hf, feats)
        self.assert_parity(hf_out, model.encoder, feats)
        out = model(feats)
        mask = feats["input_mask"].numpy().astype(bool)
        self.assertAllClose(hf_out.prediction_logits.numpy()[mask], out["mlm_logits"].numpy()[mask], atol=1e-5, rtol=0)
        self.assertAllClose(hf_out.seq_relationship_logits, out["sentence_logits"], atol=1e-5, rtol=0)

    def test_albert(self):
        config = encoder_config(embedding_size=8, num_layers=4, share="all", num_hidden_groups=2, inner_group_num=2)
        original = random_model(ModelSpec("albert", config, "mlm_sop"), 6)
        tensors = {}
        albert_encoder(tensors, original.encoder)
        bert_heads(tensors, original)
        write_tf1(self.prefix, tensors)
        with open(os.path.join(self.dir, "albert_config.json"), "w") as handle:
            json.dump({"num_hidden_layers": 4, "num_attention_heads": 4, "hidden_act": "gelu"}, handle)
        model, _ = tf1_to_plm_tf(self.prefix, os.path.join(self.dir, "out"), "albert")
        hf_config = transformers.AlbertConfig(vocab_size=53, embedding_size=8, hidden_size=32, num_hidden_layers=4,
                                              num_hidden_groups=2, inner_group_num=2, num_attention_heads=4,
                                              intermediate_size=48, max_position_embeddings=24, hidden_act="gelu_new",
                                              attn_implementation="eager")
        hf = transformers.models.albert.modeling_albert.load_tf_weights_in_albert(
            transformers.AlbertForPreTraining(hf_config).eval(), hf_config, self.prefix)
        feats = make_features(53, 6)
        hf_out = torch_run(hf, feats)
        self.assert_parity(hf_out, model.encoder, feats, inner=2)
        out = model(feats)
        mask = feats["input_mask"].numpy().astype(bool)
        self.assertAllClose(hf_out.prediction_logits.numpy()[mask], out["mlm_logits"].numpy()[mask], atol=1e-5, rtol=0)
        self.assertAllClose(hf_out.sop_logits, out["sentence_logits"], atol=1e-5, rtol=0)

    def test_electra(self):
        config = encoder_config(hidden_size=64, num_heads=1, intermediate_size=96, embedding_size=16,
                                activation="gelu_exact", use_pooler=False)
        original = random_model(ModelSpec("electra", config, "electra", generator_hidden_fraction=0.25), 7)
        write_tf1(self.prefix, electra_tensors(original))
        model, _ = tf1_to_plm_tf(self.prefix, os.path.join(self.dir, "out"), "electra")
        common = dict(vocab_size=53, embedding_size=16, num_hidden_layers=2, max_position_embeddings=24,
                      hidden_act="gelu", attn_implementation="eager")
        load = transformers.models.electra.modeling_electra.load_tf_weights_in_electra
        disc_config = transformers.ElectraConfig(hidden_size=64, num_attention_heads=1, intermediate_size=96, **common)
        discriminator = load(transformers.ElectraForPreTraining(disc_config).eval(), disc_config, self.prefix)
        gen_config = transformers.ElectraConfig(hidden_size=16, num_attention_heads=1, intermediate_size=64, **common)
        generator = load(transformers.ElectraForMaskedLM(gen_config).eval(), gen_config, self.prefix, "generator")
        feats = make_features(53, 7)
        mask = feats["input_mask"].numpy().astype(bool)
        hf_out = torch_run(discriminator, feats)
        out = self.assert_parity(hf_out, model.discriminator, feats)
        self.assertAllClose(hf_out.logits.numpy()[mask],
                            model.discriminator_head(out["sequence_output"]).numpy()[mask], atol=1e-5, rtol=0)
        hf_gen = torch_run(generator, feats)
        gen = self.assert_parity(hf_gen, model.generator, feats)
        logits = model.generator_head(gen["sequence_output"], model.generator.embedding_table,
                                      feats["masked_lm_positions"])
        self.assertAllClose(hf_gen.logits.numpy()[mask], logits.numpy()[mask], atol=1e-5, rtol=0)
