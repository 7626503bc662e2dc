"""The serving graph in process: packing, truncation, sentence embeddings, every family's encode, option errors."""
import itertools

import numpy as np
import tensorflow as tf

import export_helpers
from plm_tf.export import serving
from plm_tf.export.serving import ExportError, ServingModule


def bert_truncate_seq_pair(len_a, len_b, budget):
    """google-research/bert `_truncate_seq_pair`, on lengths: pop from the longer list (b on a tie)."""
    while len_a + len_b > budget:
        if len_a > len_b:
            len_a -= 1
        else:
            len_b -= 1
    return len_a, len_b


def ragged(rows):
    return tf.ragged.constant(rows, dtype=tf.int32, ragged_rank=1) if rows else tf.RaggedTensor.from_row_lengths(
        tf.zeros([0], tf.int32), tf.zeros([0], tf.int64))


class TruncationTest(tf.test.TestCase):
    def test_pair_truncation_matches_bert_reference(self):
        lengths = list(range(0, 14))
        pairs = list(itertools.product(lengths, lengths))
        for budget in (1, 2, 5, 6, 9):
            keep_a, keep_b = serving.truncation_lengths(
                tf.constant([a for a, _ in pairs], tf.int64), tf.constant([b for _, b in pairs], tf.int64), budget)
            expected = [bert_truncate_seq_pair(a, b, budget) for a, b in pairs]
            self.assertAllEqual(np.stack([keep_a, keep_b], 1), expected, msg=f"budget {budget}")

    def test_single_truncation_keeps_the_start(self):
        keep, none = serving.truncation_lengths(tf.constant([0, 3, 4, 10], tf.int64), None, 4)
        self.assertIsNone(none)
        self.assertAllEqual(keep, [0, 3, 4, 4])


class PackSegmentsTest(tf.test.TestCase):
    def test_bert_pair_layout(self):
        out = serving.pack_segments([ragged([[10, 11, 12, 13], []]), ragged([[20, 21], [22]])], 8,
                                    cls_id=2, sep_id=3, pad_id=0, layout="bert")
        self.assertAllEqual(out["input_word_ids"], [[2, 10, 11, 12, 3, 20, 21, 3], [2, 3, 22, 3, 0, 0, 0, 0]])
        self.assertAllEqual(out["input_type_ids"], [[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 0, 0, 0, 0]])
        self.assertAllEqual(out["input_mask"], [[1] * 8, [1, 1, 1, 1, 0, 0, 0, 0]])
        self.assertAllEqual(out["content_mask"], [[0, 1, 1, 1, 0, 1, 1, 0], [0, 0, 1, 0, 0, 0, 0, 0]])
        self.assertAllEqual(out["truncated"], [True, False])  # 4 + 2 tokens > budget 5: "13" is dropped

    def test_roberta_pair_layout_has_double_separator_and_one_type(self):
        out = serving.pack_segments([ragged([[10, 11]]), ragged([[20]])], 8, cls_id=0, sep_id=2, pad_id=1,
                                    layout="roberta", second_type_id=0)
        self.assertAllEqual(out["input_word_ids"], [[0, 10, 11, 2, 2, 20, 2, 1]])
        self.assertAllEqual(out["input_type_ids"], [[0] * 8])
        self.assertAllEqual(out["content_mask"], [[0, 1, 1, 0, 0, 1, 0, 0]])
        self.assertAllEqual(out["truncated"], [False])

    def test_single_text_truncated_to_max_length(self):
        out = serving.pack_segments([ragged([list(range(10, 30)), [7]])], 6, cls_id=2, sep_id=3, pad_id=0)
        self.assertAllEqual(out["input_word_ids"], [[2, 10, 11, 12, 13, 3], [2, 7, 3, 0, 0, 0]])
        self.assertAllEqual(out["truncated"], [True, False])

    def test_empty_batch(self):
        out = serving.pack_segments([ragged([]), ragged([])], 8, cls_id=2, sep_id=3, pad_id=0)
        for key in ("input_word_ids", "input_mask", "input_type_ids", "content_mask"):
            self.assertEqual(out[key].shape, (0, 8))
        self.assertEqual(out["truncated"].shape, (0,))

    def test_too_short_max_length_is_an_error(self):
        with self.assertRaisesRegex(ExportError, "no room for text"):
            serving.pack_segments([ragged([[1]]), ragged([[2]])], 5, cls_id=0, sep_id=2, pad_id=1, layout="roberta")


class SentenceEmbeddingTest(tf.test.TestCase):
    def test_modes(self):
        seq = tf.constant([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]], [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]])
        mask = tf.constant([[1, 1, 0], [1, 1, 1]])
        self.assertAllClose(serving.sentence_embedding(seq, mask, "mean"), [[2.0, 3.0], [7.0, 8.0]])
        self.assertAllClose(serving.sentence_embedding(seq, mask, "cls"), [[1.0, 2.0], [5.0, 6.0]])
        pooled = tf.constant([[0.5, 0.5], [0.25, 0.25]])
        self.assertAllClose(serving.sentence_embedding(seq, mask, "pooled", pooled), pooled)
        self.assertAllClose(serving.sentence_embedding(seq, tf.zeros_like(mask), "mean"), tf.zeros([2, 2]))
        with self.assertRaisesRegex(ExportError, "pooler"):
            serving.sentence_embedding(seq, mask, "pooled", None)

    def test_auto_uses_the_pooler_only_where_pretraining_trains_it(self):
        self.assertEqual(serving.resolve_sentence_embedding("auto", "mlm_nsp", True), "pooled")
        self.assertEqual(serving.resolve_sentence_embedding("auto", "mlm_sop", True), "pooled")
        self.assertEqual(serving.resolve_sentence_embedding("auto", "mlm", True), "mean")
        self.assertEqual(serving.resolve_sentence_embedding("auto", "electra", False), "mean")
        self.assertEqual(serving.resolve_sentence_embedding("cls", "electra", False), "cls")
        with self.assertRaisesRegex(ExportError, "pooler"):
            serving.resolve_sentence_embedding("pooled", "electra", False)
        with self.assertRaisesRegex(ExportError, "must be one of"):
            serving.resolve_sentence_embedding("max", "electra", False)


class EncodeEveryFamilyTest(tf.test.TestCase):
    """`encode_pairs` in process (traced tf.function, not saved) against the Keras encoder."""

    TEXTS_A = ["Emma Woodhouse, handsome, clever, and rich.", "", "naïve café 😀"]
    TEXTS_B = ["She had lived nearly twenty-one years.", "x", "ok " * 40]

    def check_family(self, objective, first, separators, mode):
        model, tokenizer = export_helpers.tiny_model(objective)
        module = ServingModule(model, tokenizer, max_seq_length=24)
        self.assertEqual(module._settings["mode"], mode)
        out = module.encode_pairs(tf.constant(self.TEXTS_A), tf.constant(self.TEXTS_B))
        features = module.pack(tf.constant(self.TEXTS_A), tf.constant(self.TEXTS_B))
        reference = serving.keras_reference(model, features, mode)
        mask = features["input_mask"].numpy()[:, :, None]
        self.assertAllClose(out["sequence_output"].numpy() * mask, reference["sequence_output"].numpy() * mask,
                            atol=1e-5)
        self.assertAllClose(out["sentence_embedding"], reference["sentence_embedding"], atol=1e-5)
        self.assertAllEqual(out["truncated"], [False, False, True])
        tokens = [t.decode() for t in out["tokens"].numpy()[0] if t]
        self.assertEqual(tokens[0], first)
        self.assertEqual([t for t in tokens if t in separators], separators)
        return features, module

    def test_roberta(self):
        features, _ = self.check_family("mlm", "<s>", ["</s>", "</s>", "</s>"], "mean")
        self.assertAllEqual(features["input_type_ids"], tf.zeros_like(features["input_type_ids"]))

    def test_albert(self):
        features, _ = self.check_family("mlm_sop", "[CLS]", ["[SEP]", "[SEP]"], "pooled")
        self.assertEqual(int(tf.reduce_max(features["input_type_ids"])), 1)

    def test_bert(self):
        _, module = self.check_family("mlm_nsp", "[CLS]", ["[SEP]", "[SEP]"], "pooled")
        with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "same length"):
            module.encode_pairs(tf.constant(["a", "b"]), tf.constant(["c"]))

    def test_bare_encoder(self):
        """A converted `BertModel` / sentence-transformers encoder: encode with its pooler, no head."""
        model, tokenizer = export_helpers.tiny_model("mlm_nsp")
        encoder = model.encoder
        module = ServingModule(encoder, tokenizer, max_seq_length=24)
        self.assertEqual(module._settings["mode"], "pooled")
        self.assertEqual(sorted(module.signatures()), ["encode", "encode_pairs", "serving_default", "token_ids"])
        features = module.pack(tf.constant(self.TEXTS_A), tf.constant(self.TEXTS_B))
        out = module.encode_pairs(tf.constant(self.TEXTS_A), tf.constant(self.TEXTS_B))
        reference = serving.keras_reference(encoder, features, "pooled")
        self.assertNotIn("logits", reference)
        self.assertAllClose(out["sentence_embedding"], reference["sentence_embedding"], atol=1e-5)
        answer = module.token_ids(features["input_word_ids"], features["input_mask"], features["input_type_ids"])
        self.assertEqual(sorted(answer), ["sequence_output"])
        self.assertEqual(ServingModule(encoder, tokenizer, 24, "mean")._settings["mode"], "mean")

    def test_masked_lm_logits_from_token_ids(self):
        model, tokenizer = export_helpers.tiny_model("mlm")
        module = ServingModule(model, tokenizer, max_seq_length=16)
        features = module.pack(tf.constant(["It is a truth universally acknowledged"]))
        out = module.token_ids(features["input_word_ids"], features["input_mask"], features["input_type_ids"])
        reference = serving.keras_reference(model, features, "mean")
        self.assertEqual(out["logits"].shape, (1, 16, tokenizer.vocab_size))
        self.assertAllClose(out["logits"], reference["logits"], atol=1e-4)


class ServingModuleErrorsTest(tf.test.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.model, cls.tokenizer = export_helpers.tiny_model("electra")

    def test_max_seq_length_beyond_the_position_table(self):
        with self.assertRaisesRegex(ExportError, "exceeds the model's 64 positions"):
            ServingModule(self.model, self.tokenizer, max_seq_length=128)

    def test_max_seq_length_too_short_for_pairs(self):
        with self.assertRaisesRegex(ExportError, "too short"):
            ServingModule(self.model, self.tokenizer, max_seq_length=4)

    def test_vocabulary_must_fit_the_model(self):
        from plm_tf.data import pipelines

        with self.assertRaisesRegex(ExportError, "8000 tokens but the model's vocab_size is 8445"):
            ServingModule(self.model, pipelines.load_tokenizer("bpe"))

    def test_not_a_pretraining_model_or_encoder(self):
        import keras

        with self.assertRaisesRegex(ExportError, "Cannot export Dense: expected an ElectraPretrainer"):
            ServingModule(keras.layers.Dense(2), self.tokenizer)
