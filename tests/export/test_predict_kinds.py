"""`plm_tf.predict` on every export kind: masked-LM fill-mask, ELECTRA detection, classifier, bare encoder."""
import os
import tempfile

import numpy as np
import tensorflow as tf

from plm_tf.data.tokenizers.byte_bpe import bytes_to_unicode
from plm_tf.export.exporter import export_saved_model
from plm_tf.export.serving import keras_reference, pack_segments
from plm_tf.predict import predict
from tests.export.export_helpers import tiny_model


def _load(path):
    import tensorflow_text  # noqa: F401

    return tf.saved_model.load(path)


class FillMaskTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = tempfile.mkdtemp()
        cls.models = {}
        for objective in ("mlm_nsp", "mlm"):  # BERT ([MASK], WordPiece) and RoBERTa (<mask>, byte-level BPE)
            model, tokenizer = tiny_model(objective)
            path = export_saved_model(model, tokenizer, os.path.join(cls.dir, objective), max_seq_length=16)
            cls.models[objective] = (model, tokenizer, path, _load(path))

    def fill(self, objective, texts, top_k=3):
        loaded = self.models[objective][3]
        return {k: v.numpy() for k, v in loaded.signatures["fill_mask"](
            text=tf.constant(texts), top_k=tf.constant(top_k)).items()}

    def test_top_tokens_are_the_keras_models_at_each_mask(self):
        model, tokenizer, _, _ = self.models["mlm_nsp"]
        text = "she walked [MASK] the [MASK] ."
        out = self.fill("mlm_nsp", [text, "no mask here"], top_k=4)
        pieces = tokenizer.tokenize(tf.constant(["she walked", "the", "."])).to_list()
        ids = pieces[0] + [tokenizer.mask_id] + pieces[1] + [tokenizer.mask_id] + pieces[2]
        features = pack_segments([tf.ragged.constant([ids, tokenizer.tokenize(tf.constant(["no mask here"]))
                                                     .to_list()[0]])], 16, tokenizer.cls_id, tokenizer.sep_id,
                                 tokenizer.pad_id)
        positions = [1 + i for i, token in enumerate(ids) if token == tokenizer.mask_id]
        self.assertEqual(list(np.flatnonzero(out["is_mask"][0])), positions)
        self.assertFalse(out["is_mask"][1].any())
        logits = keras_reference(model, features)["logits"].numpy()
        probabilities = tf.nn.softmax(logits, axis=-1).numpy()
        for t in positions:
            order = np.argsort(-logits[0, t])[:4]
            np.testing.assert_array_equal(out["top_ids"][0, t], order)
            np.testing.assert_allclose(out["top_probabilities"][0, t], probabilities[0, t, order], rtol=1e-4)
            self.assertLessEqual(out["top_probabilities"][0, t].sum(), 1.0 + 1e-6)
            self.assertTrue(np.all(np.diff(out["top_probabilities"][0, t]) <= 0))
            self.assertEqual([s.decode() for s in out["top_tokens"][0, t]],
                             [s.decode() for s in tokenizer.id_to_token(tf.constant(order)).numpy()])

    def test_roberta_mask_takes_the_space_before_it(self):
        _, tokenizer, _, _ = self.models["mlm"]
        out = self.fill("mlm", ["The <mask> sat.", "The<mask> sat."])
        np.testing.assert_array_equal(out["tokens"][0], out["tokens"][1])
        expected = (tokenizer.tokenize(tf.constant(["The"])).to_list()[0] + [tokenizer.mask_id]
                    + tokenizer.tokenize(tf.constant([" sat."])).to_list()[0])
        self.assertEqual([s.decode() for s in out["tokens"][0] if s],
                         [s.decode() for s in tokenizer.id_to_token(
                             tf.constant([tokenizer.cls_id] + expected + [tokenizer.sep_id])).numpy()])
        self.assertEqual(int(out["is_mask"][0].sum()), 1)

    def test_top_k_larger_than_the_vocabulary_is_clamped(self):
        _, tokenizer, _, _ = self.models["mlm_nsp"]
        out = self.fill("mlm_nsp", ["[MASK]"], top_k=tokenizer.vocab_size + 10)
        self.assertEqual(out["top_ids"].shape[-1], tokenizer.vocab_size)
        self.assertAllClose(out["top_probabilities"][0, 1].sum(), 1.0, atol=1e-4)

    def test_predict_prints_each_mask_with_its_top_tokens(self):
        path = self.models["mlm_nsp"][2]
        out = self.fill("mlm_nsp", ["the [MASK] was [MASK] .", "plain text"], top_k=2)
        lines = predict(path, ["the [MASK] was [MASK] .", "plain text"], top_k=2)
        self.assertEqual(lines[0], repr("the [MASK] was [MASK] ."))
        self.assertTrue(lines[1].startswith("  [MASK] 1: ") and lines[2].startswith("  [MASK] 2: "))
        first = out["top_tokens"][0, np.flatnonzero(out["is_mask"][0])[0], 0].decode()
        self.assertEqual(lines[1].split()[2], first)
        self.assertLen(lines[1].split(), 2 + 2 * 2)
        self.assertIn("no [MASK] in the text", lines[4])
        roberta = predict(self.models["mlm"][2], ["A <mask>."], top_k=1)[1]
        out = self.fill("mlm", ["A <mask>."], top_k=1)
        position = np.flatnonzero(out["is_mask"][0])[0]
        token = out["top_tokens"][0, position, 0].decode()
        self.assertEqual(roberta.split()[:2], ["<mask>", "1:"])
        # the byte-level symbols are shown as text: "Ġcat" → "cat"
        readable = bytes({c: b for b, c in bytes_to_unicode().items()}[c] for c in token).decode().strip()
        self.assertEqual(roberta, f"  <mask> 1: {readable} {out['top_probabilities'][0, position, 0]:.3f}")
        # pairs still print the embedding summary
        self.assertIn("sentence_embedding", "\n".join(predict(path, ["a", "b"], pair=True)))
        with self.assertRaisesRegex(ValueError, "top_k"):
            predict(path, ["a"], top_k=0)


class OtherExportsTest(tf.test.TestCase):

    def test_electra_prints_per_token_probabilities_and_score(self):
        model, tokenizer = tiny_model("electra")
        path = export_saved_model(model, tokenizer, os.path.join(self.get_temp_dir(), "electra"), max_seq_length=16)
        out = _load(path).signatures["serving_default"](text=tf.constant(["the cat"]))
        lines = predict(path, ["the cat"])
        self.assertEqual(lines[-1], f"  score: {out['score'].numpy()[0]:.4f}")
        self.assertLen(lines, 1 + int(out["input_mask"].numpy().sum()) + 1)
        with open(os.path.join(path, "README.md"), encoding="utf-8") as f:  # the export's model card
            card = f.read()
        self.assertIn("# ELECTRA serving export (SavedModel)", card)
        self.assertIn("python -m plm_tf.predict --saved_model=THIS_FOLDER", card)

    def test_bare_encoder_prints_the_embedding_summary(self):
        model, tokenizer = tiny_model("mlm_nsp")
        path = export_saved_model(model.encoder, tokenizer, os.path.join(self.get_temp_dir(), "bare"),
                                  max_seq_length=16)
        self.assertNotIn("fill_mask", _load(path).signatures)
        lines = predict(path, ["the [MASK] cat"])
        self.assertIn("tokens: [CLS]", lines[1])
        self.assertIn(f"sentence_embedding [{model.encoder.hidden_size}]", lines[2])

    def test_classifier_prints_label_and_probabilities(self):
        from plm_tf.finetuning.export import export_classifier
        from plm_tf.finetuning.model import ClassifierModel

        model, tokenizer = tiny_model("mlm_nsp")
        classifier = ClassifierModel(model.encoder, 3, dropout_rate=0.1, name="classifier")
        classifier.build()
        path = export_classifier(classifier, tokenizer, ["neg", "neu", "pos"], 16, False,
                                 os.path.join(self.get_temp_dir(), "classifier"))
        out = _load(path).signatures["serving_default"](text=tf.constant(["good film"]))
        probabilities = out["probabilities"].numpy()[0]
        lines = predict(path, ["good film"])
        label = ["neg", "neu", "pos"][int(np.argmax(probabilities))]
        self.assertEqual(lines[1], f"  label: {label}  (neg: {probabilities[0]:.3f}, neu: {probabilities[1]:.3f}, "
                                   f"pos: {probabilities[2]:.3f})")
        self.assertAllClose(probabilities.sum(), 1.0, atol=1e-5)
        with self.assertRaisesRegex(ValueError, "single texts"):
            predict(path, ["a", "b"], pair=True)


class ExportFactsTest(tf.test.TestCase):

    def test_facts_describe_the_served_model(self):
        from plm_tf.export.exporter import export_facts

        model, tokenizer = tiny_model("mlm_nsp")
        facts = export_facts(model, tokenizer, max_seq_length=16)
        self.assertEqual(facts["title"], "BERT serving export (SavedModel)")
        self.assertIn("fill_mask", facts["summary"])
        self.assertEqual((facts["model"]["objective"], facts["model"]["hidden"], facts["model"]["max_seq_length"],
                          facts["model"]["sentence_embedding"]),
                         ("mlm_nsp", model.encoder.hidden_size, 16, "pooled"))
        self.assertEqual(facts["vocab"], {"tokenizer": "wordpiece", "size": tokenizer.vocab_size, "lowercases": True})
        bare = export_facts(model.encoder, tokenizer, sentence_embedding="mean")
        self.assertEqual((bare["title"], bare["model"]["sentence_embedding"]),
                         ("bare encoder serving export (SavedModel)", "mean"))
