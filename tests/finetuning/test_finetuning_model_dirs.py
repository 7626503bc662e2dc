"""Fine-tuning from every kind of plm_tf model directory, in process: a converted folder (model.json, a cased
vocabulary), a fine-tuning run (task.json: fine-tune further), and restores that name what does not fit."""
import json
import os
import pathlib
import tempfile

import numpy as np
import tensorflow as tf

from plm_tf.convert.common import ModelSpec, build_model, write_plm_tf
from plm_tf.convert.model_dir import open_model_dir, restore
from plm_tf.finetuning import export, model as model_lib, trainer

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
FAST = ["finetune.seq_len = 24", "finetune.batch_size = 16", "finetune.num_epochs = 1"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "The", "the", "walk", "was", "ball", "happy", ",", "."]


def _tmpdir(test):
    return tempfile.mkdtemp(dir=test.get_temp_dir())


def bare_bert(vocab_size):
    config = dict(vocab_size=vocab_size, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=24,
                  embedding_size=16, max_position_embeddings=32, type_vocab_size=2, position_offset=0,
                  activation="gelu_exact", layer_norm_epsilon=1e-12, dropout_rate=0.0, attention_dropout_rate=0.0,
                  initializer_range=0.02, share="none", num_hidden_groups=1, inner_group_num=1, use_pooler=True)
    return ModelSpec("bert", config, None)


class ConvertedFolderTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        source = _tmpdir(self)
        with open(os.path.join(source, "vocab.txt"), "w") as handle:
            handle.write("\n".join(VOCAB) + "\n")
        with open(os.path.join(source, "tokenizer_config.json"), "w") as handle:
            json.dump({"do_lower_case": False}, handle)
        self.spec = bare_bert(len(VOCAB))
        self.model = build_model(self.spec)
        self.folder = os.path.join(_tmpdir(self), "converted")
        write_plm_tf(self.model, self.spec, self.folder, "test", vocab_dirs=(source,))

    def test_restores_the_encoder_and_keeps_the_casing(self):
        encoder, info = model_lib.restore_encoder(self.folder)
        for got, want in zip(encoder.weights, self.model.weights, strict=True):
            self.assertAllEqual(got, want)
        self.assertEqual((info["model_type"], info["objective"], info["lower_case"]), ("bert", None, False))
        self.assertEqual(info["vocab_path"], os.path.join(self.folder, "vocab.txt"))
        model_dir = _tmpdir(self)
        trainer.run_finetuning(["finetune/electra.gin"], FAST, str(FIXTURES / "single"), model_dir, self.folder)
        _, tokenizer, task = export.load_finetuned(model_dir)
        self.assertEqual((task["lower_case"], task["model_type"]), (False, "bert"))
        self.assertAllEqual(tokenizer.tokenize(tf.constant(["The the"])).to_list(), [[5, 6]])  # cased
        with self.assertRaisesRegex(trainer.FinetuningError, r"finetune.lower_case = True but .* False"):
            trainer.run_finetuning(["finetune/electra.gin"], FAST + ["finetune.lower_case = True"],
                                   str(FIXTURES / "single"), _tmpdir(self), self.folder)

    def test_fine_tunes_a_fine_tuned_run_further(self):
        first = _tmpdir(self)
        trainer.run_finetuning(["finetune/electra.gin"], FAST, str(FIXTURES / "single"), first, self.folder)
        classifier, _, _ = export.load_finetuned(first)
        encoder, info = model_lib.restore_encoder(first)
        for got, want in zip(encoder.weights, classifier.encoder.weights, strict=True):
            self.assertAllEqual(got, want)
        self.assertEqual((info["tokenizer_kind"], info["lower_case"], info["model_type"]), ("wordpiece", False, "bert"))
        second = _tmpdir(self)
        results = trainer.run_finetuning(["finetune/electra.gin"], FAST, str(FIXTURES / "pairs"), second, first)
        self.assertEqual(results["init"], tf.train.latest_checkpoint(os.path.join(first, "best")))
        self.assertEqual(open_model_dir(second).kind, "finetuning")

    def test_restore_names_missing_extra_and_reshaped_variables(self):
        other = build_model(ModelSpec("bert", dict(self.spec.encoder_config, num_layers=1, use_pooler=False,
                                                   intermediate_size=20), None))
        prefix = open_model_dir(self.folder).prefix
        with self.assertRaises(model_lib.CheckpointError) as caught:
            restore(prefix, {"encoder": other}, model_lib.CheckpointError)
        message = str(caught.exception)
        self.assertIn("extra 18: encoder/layer_1/", message)  # layer_1's 16 variables and the pooler's 2
        self.assertIn("(and 14 more)", message)
        # intermediate kernel and bias, output kernel
        self.assertIn("other shape 3: encoder/layer_0/feed_forward_sublayer/intermediate/", message)
        self.assertIn("[16, 24] (needs [16, 20])", message)
        self.assertNotIn("missing", message)
        before = [w.numpy() for w in other.weights]
        for got, want in zip(other.weights, before):  # nothing was restored
            np.testing.assert_array_equal(got.numpy(), want)

    def test_a_folder_without_vocabulary_says_so(self):
        bare = os.path.join(_tmpdir(self), "bare")
        write_plm_tf(self.model, self.spec, bare, "test")
        with self.assertRaisesRegex(model_lib.CheckpointError, r"has no vocabulary: its source shipped none"):
            model_lib.restore_encoder(bare)
