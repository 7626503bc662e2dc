"""The SavedModel end to end: `python -m plm_tf.export` on a trainer-style checkpoint of a tiny ELECTRA, then
saved_model_cli, the TF1 loader TensorFlow Serving uses, a fresh process comparing every signature with the
Keras model, bad inputs, `plm_tf.predict`, and checkpoint restore errors."""
import filecmp
import json
import os
import re
import shutil
import sys
import tempfile

import numpy as np
import tensorflow as tf

import export_helpers
from plm_tf.data import assets
from plm_tf.export import exporter, serving
from plm_tf.export.serving import ExportError

MAX_LEN = 24
TEXTS = ["The discriminator keeps what it learns.", "Mr. Knightley was a sensible man, about seven-and-thirty."]
PAIRS_A = ["Is this the first part?", "short"]
PAIRS_B = ["Yes, and here comes the second.", "word " * 60]
# The last one is sent as raw latin-1 bytes: NUL, a lone 0xFF and a truncated UTF-8 sequence.
# The last text is sent as raw latin-1 bytes: NUL, a lone 0xFF and a cut UTF-8 sequence.
BAD = ["", "long " * 500, "naïve façade — 東京 😀🎉", "\x00\xff broken \xc3"]

# Runs in a NEW python process: loads the export with only tensorflow + tensorflow_text and saves every answer.
FRESH_PROCESS = r"""
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401
export_dir, out_path, inputs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
loaded = tf.saved_model.load(export_dir)
sigs = loaded.signatures
results = {"signatures": sorted(sigs.keys())}
def run(name, prefix=None, **kwargs):
    prefix = prefix or name
    out = sigs[name](**{k: tf.constant(v, dtype=tf.string if k.startswith("text") else tf.int32)
                        for k, v in kwargs.items()})
    for key, value in out.items():
        value = value.numpy()
        if value.dtype == object:
            value = np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(value)
        results[f"{prefix}/{key}"] = value.tolist()
run("serving_default", text=inputs["texts"])
run("serving_pairs", text_a=inputs["pairs_a"], text_b=inputs["pairs_b"])
run("encode", text=inputs["texts"])
run("encode_pairs", text_a=inputs["pairs_a"], text_b=inputs["pairs_b"])
run("token_ids", input_word_ids=inputs["ids"], input_mask=inputs["mask"], input_type_ids=inputs["types"])
for i, text in enumerate(inputs["bad"]):
    run("serving_default", f"bad{i}", text=[text.encode("latin-1") if i == 3 else text])
    results[f"bad{i}"] = {k: results.pop(f"bad{i}/{k}") for k in
                          ("replaced_probability", "tokens", "input_mask", "score", "truncated")}
out = sigs["serving_default"](text=tf.constant([], tf.string))
results["empty_batch"] = {k: list(v.shape) for k, v in out.items()}
out = sigs["serving_pairs"](text_a=tf.constant([], tf.string), text_b=tf.constant([], tf.string))
results["empty_pairs"] = {k: list(v.shape) for k, v in out.items()}
results["config"] = {k: np.asarray(v.numpy()).item() for k, v in loaded.serving_config().items()}
results["config"] = {k: v.decode() if isinstance(v, bytes) else v for k, v in results["config"].items()}
json.dump(results, open(out_path, "w"))
"""


class SavedModelExportTest(tf.test.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="plm_tf_export_test_")
        cls.model, cls.tokenizer = export_helpers.tiny_model("electra", seed=3)
        cls.model_dir = os.path.join(cls.tmp, "run")
        export_helpers.write_trainer_checkpoint(cls.model, cls.model_dir, step=1)
        export_helpers.write_trainer_checkpoint(cls.model, cls.model_dir, step=7)
        cls.export_dir = os.path.join(cls.tmp, "serving")
        cls.cli = export_helpers.run_python(
            ["-m", "plm_tf.export", f"--checkpoint={cls.model_dir}", f"--output={cls.export_dir}",
             f"--max_seq_length={MAX_LEN}"])
        if cls.cli.returncode != 0:
            raise AssertionError(f"python -m plm_tf.export failed:\n{cls.cli.stdout}\n{cls.cli.stderr[-3000:]}")
        cls._fresh = None

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def test_cli_announces_the_export_and_its_end(self):
        lines = self.cli.stdout.splitlines()
        self.assertEqual(lines[0], f"plm_tf.export: exporting {self.model_dir} to {self.export_dir} ...")
        self.assertRegex(lines[1], rf"^plm_tf\.export: wrote {re.escape(self.export_dir)} in \d+ s$")

    def fresh_results(self):
        """The fresh-process answers (computed once)."""
        if SavedModelExportTest._fresh is None:
            features = self.features(TEXTS)
            inputs = {"texts": TEXTS, "pairs_a": PAIRS_A, "pairs_b": PAIRS_B, "bad": BAD,
                      "ids": features["input_word_ids"].numpy().tolist(),
                      "mask": features["input_mask"].numpy().tolist(),
                      "types": features["input_type_ids"].numpy().tolist()}
            out_path = os.path.join(self.tmp, "fresh.json")
            done = export_helpers.run_python(["-c", FRESH_PROCESS, self.export_dir, out_path, json.dumps(inputs)])
            self.assertEqual(done.returncode, 0, done.stderr[-3000:])
            with open(out_path) as f:
                SavedModelExportTest._fresh = json.load(f)
        return SavedModelExportTest._fresh

    def features(self, texts_a, texts_b=None):
        a = self.tokenizer.tokenize(tf.constant(texts_a))
        segments = [a] if texts_b is None else [a, self.tokenizer.tokenize(tf.constant(texts_b))]
        tok = self.tokenizer
        return serving.pack_segments(segments, MAX_LEN, tok.cls_id, tok.sep_id, tok.pad_id, "bert")

    # ----- what was written -----------------------------------------------------------------------------
    def test_cli_used_the_latest_checkpoint_and_operative_config(self):
        self.assertIn(f"wrote {self.export_dir}", self.cli.stdout)
        self.assertTrue(os.path.exists(os.path.join(self.export_dir, "saved_model.pb")))
        self.assertFalse([n for n in os.listdir(self.tmp) if n.startswith(".export-")], "staging dir left behind")

    def test_vocabulary_is_an_asset(self):
        asset = os.path.join(self.export_dir, "assets", "wordpiece_vocab.txt")
        self.assertTrue(filecmp.cmp(asset, assets.default_vocab_path("wordpiece"), shallow=False))

    def test_saved_model_cli_lists_the_signatures(self):
        done = export_helpers.run_python(
            [os.path.join(os.path.dirname(sys.executable), "saved_model_cli"), "show", "--all", "--dir",
             self.export_dir], timeout=180)
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])
        for name in ("serving_default", "serving_pairs", "encode", "encode_pairs", "token_ids"):
            self.assertIn(f"signature_def['{name}']", done.stdout)
        for name in ("replaced_probability", "score", "truncated", "sentence_embedding", "input_word_ids",
                     "input_type_ids", "text_a", "logits"):
            self.assertIn(f"['{name}']", done.stdout)

    def test_tf1_loader_finds_every_variable_and_runs(self):
        # TF2 SavedModels leave the TF1 variable collections empty: count the graph's variable handles, check the
        # loader initialised every one (a Keras-variable export leaves uninitialised copies the signatures read)
        # and match their values to the Keras weights.
        import tensorflow_text  # noqa: F401

        expected = [v.numpy() for v in self.model.discriminator.variables + self.model.discriminator_head.variables]
        saved = [name for name, _ in tf.train.list_variables(os.path.join(self.export_dir, "variables", "variables"))
                 if name != "_CHECKPOINTABLE_OBJECT_GRAPH"]
        self.assertLen(saved, len(expected))
        with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
            meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], self.export_dir)
            handles = [op for op in graph.get_operations()
                       if op.type == "VarHandleOp" and op.get_attr("dtype") == tf.float32]
            initialized = session.run([tf.raw_ops.VarIsInitializedOp(resource=op.outputs[0]) for op in handles])
            restored = session.run([tf.raw_ops.ReadVariableOp(resource=op.outputs[0], dtype=tf.float32)
                                    for op, ok in zip(handles, initialized) if ok])
            signature = meta_graph.signature_def["serving_default"]
            fetch = {k: graph.get_tensor_by_name(v.name) for k, v in signature.outputs.items()}
            feed = {graph.get_tensor_by_name(signature.inputs["text"].name): TEXTS}
            answer = session.run(fetch, feed)
        self.assertLen(handles, len(expected))
        self.assertAllEqual(initialized, [True] * len(handles))
        unmatched = list(restored)
        for value in expected:
            match = [i for i, r in enumerate(unmatched) if r.shape == value.shape and np.array_equal(r, value)]
            self.assertTrue(match, f"no restored variable equals a Keras weight of shape {value.shape}")
            unmatched.pop(match[0])
        self.assertAllClose(answer["score"], self.fresh_results()["serving_default/score"], atol=1e-5)

    # ----- fresh process parity -------------------------------------------------------------------------
    def test_fresh_process_matches_keras_on_every_signature(self):
        fresh = self.fresh_results()
        self.assertEqual(fresh["signatures"],
                         ["encode", "encode_pairs", "serving_default", "serving_pairs", "token_ids"])
        self.assertEqual(fresh["config"], {"max_seq_length": MAX_LEN, "objective": "electra", "layout": "bert",
                                           "sentence_embedding": "mean", "tokenizer_kind": "wordpiece"})
        for name, (texts_a, texts_b) in {"serving_default": (TEXTS, None), "serving_pairs": (PAIRS_A, PAIRS_B),
                                         "encode": (TEXTS, None), "encode_pairs": (PAIRS_A, PAIRS_B)}.items():
            features = self.features(texts_a, texts_b)
            reference = serving.keras_reference(self.model, features, "mean")
            mask = features["input_mask"].numpy()
            np.testing.assert_array_equal(fresh[f"{name}/input_mask"], mask)
            tokens = np.where(mask > 0, self.tokenizer.id_to_token(features["input_word_ids"]).numpy(), b"")
            np.testing.assert_array_equal(fresh[f"{name}/tokens"], np.char.decode(tokens.astype(bytes), "utf-8"))
            np.testing.assert_array_equal(fresh[f"{name}/truncated"], features["truncated"].numpy())
            if name.startswith("serving"):
                probability = tf.sigmoid(reference["logits"]).numpy() * mask
                np.testing.assert_allclose(fresh[f"{name}/replaced_probability"], probability, atol=1e-5)
                content = features["content_mask"].numpy()
                score = (probability * content).sum(1) / content.sum(1)
                np.testing.assert_allclose(fresh[f"{name}/score"], score, atol=1e-5)
            else:
                np.testing.assert_allclose(fresh[f"{name}/sequence_output"], reference["sequence_output"], atol=1e-5)
                np.testing.assert_allclose(fresh[f"{name}/sentence_embedding"], reference["sentence_embedding"],
                                           atol=1e-5)
        reference = serving.keras_reference(self.model, self.features(TEXTS), "mean")
        np.testing.assert_allclose(fresh["token_ids/logits"], reference["logits"], atol=1e-5)
        self.assertEqual(fresh["serving_pairs/truncated"], [False, True])

    # ----- bad input ------------------------------------------------------------------------------------
    def test_empty_string_gives_only_specials_and_score_zero(self):
        bad = self.fresh_results()["bad0"]
        self.assertEqual([t for t in bad["tokens"][0] if t], ["[CLS]", "[SEP]"])
        self.assertEqual(bad["score"], [0.0])
        self.assertEqual(bad["truncated"], [False])

    def test_long_text_is_truncated_and_says_so(self):
        bad = self.fresh_results()["bad1"]
        self.assertEqual(bad["truncated"], [True])
        self.assertEqual(bad["input_mask"], [[1] * MAX_LEN])
        self.assertEqual(bad["tokens"][0][0], "[CLS]")
        self.assertEqual(bad["tokens"][0][-1], "[SEP]")
        self.assertEqual(bad["tokens"][0][1:-1], ["long"] * (MAX_LEN - 2))
        self.assertTrue(0.0 < bad["score"][0] < 1.0)

    def test_non_ascii_emoji_and_broken_utf8_are_tokenized(self):
        fresh = self.fresh_results()
        for key in ("bad2", "bad3"):
            bad = fresh[key]
            tokens = [t for t in bad["tokens"][0] if t]
            self.assertGreater(len(tokens), 2, key)
            self.assertTrue(np.isfinite(bad["score"][0]) and 0.0 < bad["score"][0] < 1.0, key)
            self.assertFalse(bad["truncated"][0], key)
        expected = self.tokenizer.id_to_token(self.tokenizer.tokenize(tf.constant([BAD[2]]))).to_list()[0]
        self.assertEqual([t for t in fresh["bad2"]["tokens"][0] if t][1:-1], [t.decode() for t in expected])
        self.assertIn("[UNK]", fresh["bad2"]["tokens"][0])  # the emoji are not in the vocabulary

    def test_empty_batch_gives_empty_outputs(self):
        fresh = self.fresh_results()
        for key in ("empty_batch", "empty_pairs"):
            self.assertEqual(fresh[key], {"replaced_probability": [0, MAX_LEN], "tokens": [0, MAX_LEN],
                                          "input_mask": [0, MAX_LEN], "score": [0], "truncated": [0]})

    # ----- predict ---------------------------------------------------------------------------------------
    def test_predict_prints_tokens_probabilities_and_score(self):
        from plm_tf import predict

        lines = predict.predict(self.export_dir, ["Hello there", "long " * 100])
        features = self.features(["Hello there"])
        probability = tf.sigmoid(serving.keras_reference(self.model, features, "mean")["logits"]).numpy()[0]
        tokens = [t.decode() for t in self.tokenizer.id_to_token(features["input_word_ids"]).numpy()[0]]
        count = int(features["input_mask"].numpy().sum())
        self.assertEqual(lines[0], "'Hello there'")
        self.assertEqual([line.split() for line in lines[1:1 + count]],
                         [[token, f"{p:.3f}"] for token, p in zip(tokens[:count], probability[:count])])
        self.assertEqual(lines[0 + count + 1].split()[0], "score:")
        self.assertTrue(lines[-1].strip().endswith("(truncated)"))
        pair_lines = predict.predict(self.export_dir, ["Hello there", "general kenobi"], pair=True)
        self.assertEqual(pair_lines[0], "'Hello there' / 'general kenobi'")
        self.assertEqual([line.split()[0] for line in pair_lines[1:] if line.split()[0].startswith("[")],
                         ["[CLS]", "[SEP]", "[SEP]"])
        with self.assertRaisesRegex(ValueError, "even number"):
            predict.predict(self.export_dir, ["a", "b", "c"], pair=True)

    def test_existing_output_is_kept_without_overwrite(self):
        with self.assertRaisesRegex(ExportError, "exists; pass overwrite=True"):
            exporter.export_saved_model(self.model, self.tokenizer, self.export_dir, overwrite=False)
        self.assertTrue(os.path.exists(os.path.join(self.export_dir, "saved_model.pb")))

    # ----- checkpoints that do not fit -------------------------------------------------------------------
    def test_checkpoint_of_another_size_is_refused(self):
        with self.assertRaisesRegex(ExportError, "does not fit"):
            exporter.load_from_checkpoint(self.model_dir, ["testing/electra_tiny.gin"],
                                          ["encoder_config.hidden_size = 48"])

    def test_missing_checkpoint_and_missing_gin(self):
        with self.assertRaisesRegex(ExportError, "holds no checkpoint"):
            exporter.resolve_checkpoint(self.tmp)
        with self.assertRaisesRegex(ExportError, "neither a checkpoint prefix"):
            exporter.resolve_checkpoint(os.path.join(self.model_dir, "ckpt-99"))
        lonely = os.path.join(self.tmp, "lonely")
        export_helpers.write_trainer_checkpoint(self.model, lonely)
        os.remove(os.path.join(lonely, "operative_config.gin"))
        with self.assertRaisesRegex(ExportError, "No --gin_file given"):
            exporter.load_from_checkpoint(lonely)
        self.assertEqual(exporter.resolve_checkpoint(os.path.join(self.model_dir, "ckpt-1")),
                         os.path.join(self.model_dir, "ckpt-1"))

    def test_cli_error_is_one_line_and_status_2(self):
        done = export_helpers.run_python(["-m", "plm_tf.export", f"--checkpoint={self.tmp}/nowhere",
                                          f"--output={self.tmp}/never"], timeout=180)
        self.assertEqual(done.returncode, 2, done.stderr[-2000:])
        errors = [line for line in done.stderr.splitlines() if line.startswith("plm_tf.export: error:")]
        self.assertLen(errors, 1)
        self.assertIn("neither a checkpoint prefix", errors[0])
        self.assertFalse(os.path.exists(f"{self.tmp}/never"))

    def test_checkpoint_holding_block_weights_only_under_the_optimizer(self):
        # Encoders before the block-attribute fix were checkpointed with their blocks reachable only through
        # optimizer/_trainable_variables/<i>; restore_model_weights falls back to that index.
        path = os.path.join(self.tmp, "optimizer_only", "ckpt")
        shadow = tf.__internal__.tracking.AutoTrackable()
        shadow._trainable_variables = list(self.model.trainable_variables)
        written = tf.train.Checkpoint(model=tf.Module(), optimizer=shadow).write(path)
        fresh, _ = export_helpers.tiny_model("electra", seed=11)
        exporter.restore_model_weights(fresh, written)
        for restored, original in zip(fresh.variables, self.model.variables):
            self.assertAllEqual(restored, original)


class EncoderFamiliesSavedModelTest(tf.test.TestCase):
    """RoBERTa (byte-level BPE: vocab.json + merges.txt) and ALBERT (SentencePiece model) exports, loaded back."""

    def check_family(self, objective, asset_names, first_tokens):
        import tensorflow_text  # noqa: F401

        model, tokenizer = export_helpers.tiny_model(objective)
        export_dir = os.path.join(self.get_temp_dir(), objective)
        exporter.export_saved_model(model, tokenizer, export_dir, max_seq_length=24)
        self.assertEqual(sorted(os.listdir(os.path.join(export_dir, "assets"))), asset_names)
        loaded = tf.saved_model.load(export_dir)
        self.assertEqual(sorted(loaded.signatures),
                         ["encode", "encode_pairs", "fill_mask", "serving_default", "token_ids"])
        out = loaded.signatures["encode_pairs"](text_a=tf.constant(["Hello there", ""]),
                                                text_b=tf.constant(["naïve 😀", "word " * 30]))
        module = serving.ServingModule(model, tokenizer, max_seq_length=24)
        features = module.pack(tf.constant(["Hello there", ""]), tf.constant(["naïve 😀", "word " * 30]))
        mode = module._settings["mode"]
        reference = serving.keras_reference(model, features, mode)
        self.assertAllClose(out["sentence_embedding"], reference["sentence_embedding"], atol=1e-5)
        self.assertAllEqual(out["truncated"], [False, True])
        self.assertEqual([t.decode() for t in out["tokens"].numpy()[1][:3]], first_tokens)
        default = loaded.signatures["serving_default"](text=tf.constant([], tf.string))
        self.assertEqual(default["sentence_embedding"].shape, (0, model.encoder.hidden_size))

    def test_roberta(self):
        self.check_family("mlm", ["merges.txt", "vocab.json"], ["<s>", "</s>", "</s>"])

    def test_albert(self):
        self.check_family("mlm_sop", ["sentencepiece.model"], ["[CLS]", "[SEP]", "\u2581word"])
