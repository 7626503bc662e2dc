"""Parity of plm_tf.convert.hf with the transformers PyTorch models, both directions.

Randomly initialised tiny transformers models are saved as safetensors, converted, and every hidden state
and head output is compared at the real (non-padding) positions of a padded batch; the converted models are
then written back out as HF folders that transformers loads, and compared again. Skipped without the `hf`
extra (torch + transformers).
"""
import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf

os.environ["HF_HUB_OFFLINE"] = "1"
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from plm_tf.convert import ConversionError, hf_to_plm_tf, plm_tf_to_hf, read_plm_tf  # noqa: E402
from plm_tf.convert.common import ModelSpec, build_model  # noqa: E402

TOLERANCE = 1e-5
BATCH, LENGTH = 3, 11
LENGTHS = (11, 7, 4)
# Largest differences seen per family and output, printed at the end of the run (pytest -s) for the record.
MAX_DIFFS = {}

CONFIGS = {
    "bert": transformers.BertConfig,
    "roberta": transformers.RobertaConfig,
    "albert": transformers.AlbertConfig,
    "electra": transformers.ElectraConfig,
}


def hf_config(family, **overrides):
    base = dict(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                max_position_embeddings=40, type_vocab_size=2, hidden_dropout_prob=0.1,
                attention_probs_dropout_prob=0.1, attn_implementation="eager")
    if family == "roberta":
        base.update(max_position_embeddings=42, type_vocab_size=1, pad_token_id=1, layer_norm_eps=1e-5)
    base.update(overrides)
    return CONFIGS[family](**base)


def random_hf(model_class, config, seed):
    """A transformers model with every parameter drawn at random (not only the initializer's), in eval mode."""
    torch.manual_seed(seed)
    model = model_class(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            scale = 0.5 if "LayerNorm" in name or "layer_norm" in name else 0.2
            parameter.add_(torch.randn_like(parameter) * scale)
    model.tie_weights()
    return model


def inputs(vocab_size, type_vocab_size, pad_id, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(2, vocab_size, size=(BATCH, LENGTH))
    ids[ids == pad_id] = pad_id + 1
    mask = (np.arange(LENGTH)[None, :] < np.array(LENGTHS)[:, None]).astype(np.int64)
    ids = np.where(mask == 1, ids, pad_id)
    segments = rng.integers(0, type_vocab_size, size=(BATCH, LENGTH)) * mask
    return ids, mask, segments


def torch_outputs(model, ids, mask, segments):
    with torch.no_grad():
        return model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                     token_type_ids=torch.tensor(segments), output_hidden_states=True)


def features(ids, mask, segments):
    return {
        "input_ids": tf.constant(ids, tf.int32),
        "input_mask": tf.constant(mask, tf.int32),
        "segment_ids": tf.constant(segments, tf.int32),
        "masked_lm_positions": tf.tile(tf.range(LENGTH)[None], [BATCH, 1]),
    }


def plm_hidden_states(encoder, feats):
    out = encoder(feats, training=False)
    inner = encoder.inner_group_num if encoder.share == "all" else 1
    states = [out["embedding_output"]] + [out["encoder_outputs"][(i + 1) * inner - 1] for i in range(encoder.num_layers)]
    return [s.numpy() for s in states], out


class HFParityTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())

    def path(self, name):
        return os.path.join(self.dir, name)

    def assert_close(self, family, what, expected, actual, mask=None):
        expected, actual = np.asarray(expected, np.float32), np.asarray(actual, np.float32)
        self.assertEqual(expected.shape, actual.shape, what)
        if mask is not None:
            keep = mask.astype(bool)
            expected, actual = expected[keep], actual[keep]
        diff = float(np.max(np.abs(expected - actual)))
        key = f"{family}: {what}"
        MAX_DIFFS[key] = max(MAX_DIFFS.get(key, 0.0), diff)
        self.assertLessEqual(diff, TOLERANCE, f"{key}: max abs diff {diff}")

    def compare_hidden(self, family, hf_out, encoder, feats, mask):
        states, plm_out = plm_hidden_states(encoder, feats)
        self.assertLen(states, len(hf_out.hidden_states))
        for index, (expected, actual) in enumerate(zip(hf_out.hidden_states, states)):
            self.assert_close(family, f"hidden state {index}", expected.numpy(), actual, mask)
        return plm_out

    def round_trip(self, family, hf_model, class_name, ids, mask, segments, generator_output=None,
                   generator_model=None):
        """plm_tf folder → HF folder → transformers: same outputs as the original HF model."""
        model, spec, folder = read_plm_tf(self.path("plm"), family)
        out_dir = self.path("hf_back")
        gen_dir = self.path("hf_back_generator") if generator_output else None
        written = plm_tf_to_hf(model, spec, out_dir, generator_output=gen_dir, vocab_dirs=(folder,))
        pairs = [(out_dir, hf_model, class_name)]
        if gen_dir:
            self.assertEqual(written, [out_dir, gen_dir])
            pairs.append((gen_dir, generator_model, "ElectraForMaskedLM"))
        for directory, original, name in pairs:
            reloaded = getattr(transformers, name).from_pretrained(directory, attn_implementation="eager").eval()
            expected = torch_outputs(original, ids, mask, segments)
            actual = torch_outputs(reloaded, ids, mask, segments)
            for index, (a, b) in enumerate(zip(expected.hidden_states, actual.hidden_states)):
                self.assert_close(family, f"round trip hidden state {index}", a.numpy(), b.numpy(), mask)
            for key in ("logits", "prediction_logits", "seq_relationship_logits", "sop_logits", "pooler_output"):
                if getattr(expected, key, None) is not None:
                    self.assert_close(family, f"round trip {key}", getattr(expected, key).numpy(),
                                      getattr(actual, key).numpy(), None if "relationship" in key or "sop" in key
                                      or "pooler" in key else mask)

    def convert(self, family, hf_model, generator=None):
        hf_model.save_pretrained(self.path("hf"), safe_serialization=True)
        generator_dir = None
        if generator is not None:
            generator_dir = self.path("hf_generator")
            generator.save_pretrained(generator_dir, safe_serialization=True)
        model, spec = hf_to_plm_tf(self.path("hf"), self.path("plm"), family, generator_input=generator_dir)
        for name in ("ckpt.index", "checkpoint", "model.gin"):
            self.assertTrue(os.path.exists(os.path.join(self.path("plm"), name)), name)
        return model, spec

    # ------------------------------------------------------------------------------------------- BERT

    def test_bert_for_pretraining(self):
        hf_model = random_hf(transformers.BertForPreTraining, hf_config("bert"), 0)
        model, spec = self.convert("bert", hf_model)
        self.assertEqual(spec.objective, "mlm_nsp")
        self.assertEqual(spec.encoder_config["activation"], "gelu_exact")
        ids, mask, segments = inputs(97, 2, 0)
        hf_out = torch_outputs(hf_model, ids, mask, segments)
        feats = features(ids, mask, segments)
        self.compare_hidden("bert", hf_out, model.encoder, feats, mask)
        out = model(feats, training=False)
        self.assert_close("bert", "MLM logits", hf_out.prediction_logits.numpy(), out["mlm_logits"], mask)
        self.assert_close("bert", "NSP logits", hf_out.seq_relationship_logits.numpy(), out["sentence_logits"])
        self.round_trip("bert", hf_model, "BertForPreTraining", ids, mask, segments)

    def test_bert_masked_lm_tanh_gelu_three_layers(self):
        config = hf_config("bert", hidden_size=24, num_attention_heads=3, num_hidden_layers=3, hidden_act="gelu_new",
                           intermediate_size=50)
        hf_model = random_hf(transformers.BertForMaskedLM, config, 1)
        model, spec = self.convert("bert", hf_model)
        self.assertEqual((spec.objective, spec.encoder_config["activation"]), ("mlm", "gelu_tanh"))
        self.assertFalse(spec.encoder_config["use_pooler"])
        ids, mask, segments = inputs(97, 2, 0, seed=1)
        hf_out = torch_outputs(hf_model, ids, mask, segments)
        feats = features(ids, mask, segments)
        self.compare_hidden("bert", hf_out, model.encoder, feats, mask)
        self.assert_close("bert", "MLM logits", hf_out.logits.numpy(), model(feats)["mlm_logits"], mask)
        self.round_trip("bert", hf_model, "BertForMaskedLM", ids, mask, segments)

    def test_bert_bare_encoder_with_pooler(self):
        hf_model = random_hf(transformers.BertModel, hf_config("bert"), 2)
        model, spec = self.convert("bert", hf_model)
        self.assertIsNone(spec.objective)
        ids, mask, segments = inputs(97, 2, 0, seed=2)
        hf_out = torch_outputs(hf_model, ids, mask, segments)
        out = self.compare_hidden("bert", hf_out, model, features(ids, mask, segments), mask)
        self.assert_close("bert", "pooled output", hf_out.pooler_output.numpy(), out["pooled_output"])
        self.round_trip("bert", hf_model, "BertModel", ids, mask, segments)

    # ------------------------------------------------------------------------------------------- RoBERTa

    def test_roberta_masked_lm(self):
        hf_model = random_hf(transformers.RobertaForMaskedLM, hf_config("roberta"), 3)
        model, spec = self.convert("roberta", hf_model)
        self.assertEqual(spec.encoder_config["position_offset"], 2)
        self.assertEqual(spec.encoder_config["layer_norm_epsilon"], 1e-5)
        ids, mask, segments = inputs(97, 1, 1, seed=3)
        hf_out = torch_outputs(hf_model, ids, mask, segments)
        feats = features(ids, mask, segments)
        self.compare_hidden("roberta", hf_out, model.encoder, feats, mask)
        self.assert_close("roberta", "MLM logits", hf_out.logits.numpy(), model(feats)["mlm_logits"], mask)
        self.round_trip("roberta", hf_model, "RobertaForMaskedLM", ids, mask, segments)

    # ------------------------------------------------------------------------------------------- ALBERT

    def test_albert_for_pretraining_two_groups(self):
        config = hf_config("albert", embedding_size=16, num_hidden_layers=4, num_hidden_groups=2, inner_group_num=1,
                           hidden_act="gelu_new")
        hf_model = random_hf(transformers.AlbertForPreTraining, config, 4)
        model, spec = self.convert("albert", hf_model)
        self.assertEqual(spec.objective, "mlm_sop")
        self.assertLen(model.encoder.blocks, 2)
        self.assertEqual(model.encoder.block_schedule, [0, 0, 1, 1])
        ids, mask, segments = inputs(97, 2, 0, seed=4)
        hf_out = torch_outputs(hf_model, ids, mask, segments)
        feats = features(ids, mask, segments)
        self.compare_hidden("albert", hf_out, model.encoder, feats, mask)
        out = model(feats, training=False)
        self.assert_close("albert", "MLM logits", hf_out.prediction_logits.numpy(), out["mlm_logits"], mask)
        self.assert_close("albert", "SOP logits", hf_out.sop_logits.numpy(), out["sentence_logits"])
        self.round_trip("albert", hf_model, "AlbertForPreTraining", ids, mask, segments)

    def test_albert_masked_lm_two_inner_layers(self):
        config = hf_config("albert", embedding_size=8, num_hidden_layers=3, num_hidden_groups=1, inner_group_num=2,
                           hidden_act="gelu")
        hf_model = random_hf(transformers.AlbertForMaskedLM, config, 5)
        model, spec = self.convert("albert", hf_model)
        self.assertEqual(spec.objective, "mlm")
        self.assertEqual(model.encoder.block_schedule, [0, 1, 0, 1, 0, 1])
        ids, mask, segments = inputs(97, 2, 0, seed=5)
        hf_out = torch_outputs(hf_model, ids, mask, segments)
        feats = features(ids, mask, segments)
        self.compare_hidden("albert", hf_out, model.encoder, feats, mask)
        self.assert_close("albert", "MLM logits", hf_out.logits.numpy(), model(feats)["mlm_logits"], mask)
        self.round_trip("albert", hf_model, "AlbertForMaskedLM", ids, mask, segments)

    # ------------------------------------------------------------------------------------------- ELECTRA

    def electra_pair(self, embedding_size, hidden, generator_hidden, seed):
        discriminator = random_hf(transformers.ElectraForPreTraining, hf_config(
            "electra", embedding_size=embedding_size, hidden_size=hidden, intermediate_size=4 * hidden), seed)
        generator = random_hf(transformers.ElectraForMaskedLM, hf_config(
            "electra", embedding_size=embedding_size, hidden_size=generator_hidden, num_attention_heads=1,
            intermediate_size=4 * generator_hidden), seed + 100)
        generator.electra.embeddings.load_state_dict(discriminator.electra.embeddings.state_dict())
        return discriminator, generator

    def check_electra(self, model, discriminator, generator, seed):
        ids, mask, segments = inputs(97, 2, 0, seed=seed)
        feats = features(ids, mask, segments)
        hf_out = torch_outputs(discriminator, ids, mask, segments)
        out = self.compare_hidden("electra", hf_out, model.discriminator, feats, mask)
        self.assert_close("electra", "discriminator logits", hf_out.logits.numpy(),
                          model.discriminator_head(out["sequence_output"]), mask)
        if generator is not None:
            hf_gen = torch_outputs(generator, ids, mask, segments)
            gen_out = self.compare_hidden("electra", hf_gen, model.generator, feats, mask)
            logits = model.generator_head(gen_out["sequence_output"], model.generator.embedding_table,
                                          feats["masked_lm_positions"])
            self.assert_close("electra", "generator MLM logits", hf_gen.logits.numpy(), logits, mask)
        return ids, mask, segments

    def test_electra_discriminator_and_generator_with_projection(self):
        discriminator, generator = self.electra_pair(embedding_size=16, hidden=32, generator_hidden=8, seed=6)
        model, spec = self.convert("electra", discriminator, generator)
        self.assertEqual(spec.objective, "electra")
        self.assertEqual(spec.generator_hidden_fraction, 0.25)
        self.assertTrue(spec.tie_embeddings)
        self.assertIs(model.generator.embeddings, model.discriminator.embeddings)
        ids, mask, segments = self.check_electra(model, discriminator, generator, seed=6)
        self.round_trip("electra", discriminator, "ElectraForPreTraining", ids, mask, segments,
                        generator_output=True, generator_model=generator)

    def test_electra_equal_widths_untied_generator(self):
        discriminator, generator = self.electra_pair(embedding_size=32, hidden=32, generator_hidden=16, seed=7)
        with torch.no_grad():
            generator.electra.embeddings.word_embeddings.weight.add_(1.0)
        generator.tie_weights()
        model, spec = self.convert("electra", discriminator, generator)
        self.assertFalse(spec.tie_embeddings)
        self.assertIsNone(model.discriminator.embedding_projection)
        self.assertIsNotNone(model.generator.embedding_projection)
        ids, mask, segments = self.check_electra(model, discriminator, generator, seed=7)
        self.round_trip("electra", discriminator, "ElectraForPreTraining", ids, mask, segments,
                        generator_output=True, generator_model=generator)

    def test_electra_discriminator_alone(self):
        discriminator, _ = self.electra_pair(embedding_size=16, hidden=32, generator_hidden=8, seed=8)
        model, spec = self.convert("electra", discriminator)
        self.assertFalse(spec.has_generator)
        ids, mask, segments = self.check_electra(model, discriminator, None, seed=8)
        self.round_trip("electra", discriminator, "ElectraForPreTraining", ids, mask, segments)
        with self.assertRaisesRegex(ConversionError, "no ELECTRA generator"):
            restored, restored_spec, _ = read_plm_tf(self.path("plm"), "electra")
            plm_tf_to_hf(restored, restored_spec, self.path("x"), generator_output=self.path("y"))

    def test_electra_generator_alone(self):
        _, generator = self.electra_pair(embedding_size=16, hidden=32, generator_hidden=8, seed=9)
        model, spec = self.convert("electra", generator)
        self.assertEqual(spec.objective, "mlm")
        ids, mask, segments = inputs(97, 2, 0, seed=9)
        feats = features(ids, mask, segments)
        hf_out = torch_outputs(generator, ids, mask, segments)
        self.compare_hidden("electra", hf_out, model.encoder, feats, mask)
        self.assert_close("electra", "generator MLM logits", hf_out.logits.numpy(), model(feats)["mlm_logits"], mask)
        self.round_trip("electra", generator, "ElectraForMaskedLM", ids, mask, segments)


class PlmTfToHFTest(tf.test.TestCase):
    """Models born in plm_tf (random weights), written out as HF folders: transformers computes the same."""

    def export_and_compare(self, spec, class_name, seed):
        tf.keras.utils.set_random_seed(seed)
        model = build_model(spec)
        for variable in model.weights:
            variable.assign(variable + tf.random.normal(variable.shape, stddev=0.2))
        directory = tempfile.mkdtemp(dir=self.get_temp_dir())
        generator_dir = os.path.join(directory, "generator") if spec.objective == "electra" else None
        plm_tf_to_hf(model, spec, os.path.join(directory, "main"), generator_output=generator_dir)
        hf_model = getattr(transformers, class_name).from_pretrained(
            os.path.join(directory, "main"), attn_implementation="eager").eval()
        family = spec.model_type
        base = transformers.AutoModel.from_pretrained(os.path.join(directory, "main"))
        self.assertEqual(type(base).__name__, f"{family.capitalize() if family != 'roberta' else 'Roberta'}Model")
        self.assertEqual(type(transformers.AutoModelForPreTraining.from_pretrained(os.path.join(directory, "main"))),
                         type(hf_model))
        ids, mask, segments = inputs(spec.encoder_config["vocab_size"], spec.encoder_config["type_vocab_size"],
                                     spec.encoder_config["position_offset"] - 1 if family == "roberta" else 0, seed)
        feats = features(ids, mask, segments)
        hf_out = torch_outputs(hf_model, ids, mask, segments)
        encoder = model.discriminator if spec.objective == "electra" else model.encoder
        states, out = plm_hidden_states(encoder, feats)
        for index, (expected, actual) in enumerate(zip(hf_out.hidden_states, states)):
            HFParityTest.assert_close(self, family, f"exported hidden state {index}", expected.numpy(), actual, mask)
        if spec.objective == "electra":
            HFParityTest.assert_close(self, family, "exported discriminator logits", hf_out.logits.numpy(),
                                      model.discriminator_head(out["sequence_output"]), mask)
            generator = transformers.ElectraForMaskedLM.from_pretrained(generator_dir, attn_implementation="eager")
            gen_out = torch_outputs(generator.eval(), ids, mask, segments)
            seq = model.generator(feats)["sequence_output"]
            logits = model.generator_head(seq, model.generator.embedding_table, feats["masked_lm_positions"])
            HFParityTest.assert_close(self, family, "exported generator MLM logits", gen_out.logits.numpy(), logits,
                                      mask)
        else:
            plm_out = model(feats, training=False)
            logits = hf_out.prediction_logits if hasattr(hf_out, "prediction_logits") else hf_out.logits
            HFParityTest.assert_close(self, family, "exported MLM logits", logits.numpy(), plm_out["mlm_logits"], mask)
            if "sentence_logits" in plm_out:
                sentence = getattr(hf_out, "sop_logits", None)
                sentence = sentence if sentence is not None else hf_out.seq_relationship_logits
                HFParityTest.assert_close(self, family, "exported sentence logits", sentence.numpy(),
                                          plm_out["sentence_logits"])

    @staticmethod
    def config(**overrides):
        base = dict(vocab_size=61, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=24, embedding_size=16,
                    max_position_embeddings=32, type_vocab_size=2, position_offset=0, activation="gelu_tanh",
                    layer_norm_epsilon=1e-12, dropout_rate=0.1, attention_dropout_rate=0.1, initializer_range=0.02,
                    share="none", num_hidden_groups=1, inner_group_num=1, use_pooler=True)
        base.update(overrides)
        return base

    def test_albert_without_factorisation_exports_identity_mapping(self):
        spec = ModelSpec("albert", self.config(share="all", num_layers=3, num_hidden_groups=3), "mlm_sop")
        self.export_and_compare(spec, "AlbertForPreTraining", seed=10)

    def test_electra_pretrainer(self):
        spec = ModelSpec("electra", self.config(embedding_size=8, activation="gelu_exact", use_pooler=False),
                         "electra", generator_hidden_fraction=0.5)
        self.export_and_compare(spec, "ElectraForPreTraining", seed=11)

    def test_roberta_masked_lm(self):
        spec = ModelSpec("roberta", self.config(type_vocab_size=1, position_offset=2, max_position_embeddings=34,
                                                activation="gelu_exact", layer_norm_epsilon=1e-5), "mlm")
        self.export_and_compare(spec, "RobertaForMaskedLM", seed=12)

    def test_bert_pretrainer(self):
        spec = ModelSpec("bert", self.config(), "mlm_nsp")
        self.export_and_compare(spec, "BertForPreTraining", seed=13)


def teardown_module(module):
    for key in sorted(MAX_DIFFS):
        print(f"max abs diff {key}: {MAX_DIFFS[key]:.2e}")
