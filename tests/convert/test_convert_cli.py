"""`python -m plm_tf.convert`: the command line both ways, its gin output and its one-line errors."""
import os
import subprocess
import sys
import tempfile

import numpy as np
import safetensors.numpy
import tensorflow as tf

from plm_tf.convert import ConversionError
from plm_tf.convert.__main__ import run
from plm_tf.convert.common import ModelSpec, build_model
from plm_tf.convert.hf import plm_tf_to_hf
from plm_tf.gin_config import parse_gin

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def electra_spec():
    config = dict(vocab_size=30, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32, embedding_size=8,
                  max_position_embeddings=16, type_vocab_size=2, position_offset=0, activation="gelu_exact",
                  layer_norm_epsilon=1e-12, dropout_rate=0.1, attention_dropout_rate=0.1, initializer_range=0.02,
                  share="none", num_hidden_groups=1, inner_group_num=1, use_pooler=False,
                  embedding_projection_initializer="glorot_uniform")
    return ModelSpec("electra", config, "electra", generator_hidden_fraction=0.5)


class ConvertCommandTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())
        spec = electra_spec()
        self.model = build_model(spec)
        self.hf = os.path.join(self.dir, "hf")
        self.hf_generator = os.path.join(self.dir, "hf_generator")
        plm_tf_to_hf(self.model, spec, self.hf, generator_output=self.hf_generator)
        with open(os.path.join(self.hf, "vocab.txt"), "w") as handle:
            specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            handle.write("\n".join(specials + [f"tok{i}" for i in range(25)]) + "\n")

    def cli(self, *args):
        env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   TF_CPP_MIN_LOG_LEVEL="3")
        return subprocess.run([sys.executable, "-m", "plm_tf.convert", *args], capture_output=True, text=True,
                              env=env, cwd=self.dir, timeout=300)

    def test_round_trip_through_the_command_line(self):
        plm = os.path.join(self.dir, "plm")
        back, back_generator = os.path.join(self.dir, "back"), os.path.join(self.dir, "back_generator")
        first = self.cli("--from=hf", "--model_type=electra", f"--input={self.hf}",
                         f"--generator_input={self.hf_generator}", f"--output={plm}")
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertTrue(os.path.exists(os.path.join(plm, "vocab.txt")))
        second = self.cli("--from=plm_tf", "--to=hf", "--model_type=electra", f"--input={plm}",
                          f"--output={back}", f"--generator_output={back_generator}")
        self.assertEqual(second.returncode, 0, second.stderr)
        self.assertIn(f"wrote {back_generator}", second.stdout)
        for original, copy in ((self.hf, back), (self.hf_generator, back_generator)):
            a = safetensors.numpy.load_file(os.path.join(original, "model.safetensors"))
            b = safetensors.numpy.load_file(os.path.join(copy, "model.safetensors"))
            self.assertEqual(sorted(a), sorted(b))
            for name in a:
                np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        self.assertTrue(os.path.exists(os.path.join(back, "vocab.txt")))

    def test_error_is_one_line_with_status_2(self):
        result = self.cli("--from=hf", "--model_type=gpt2", f"--input={self.hf}", f"--output={self.dir}/x")
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stderr.strip().splitlines(),
                         ["plm_tf.convert: error: Unknown model type 'gpt2'; expected one of bert, roberta, albert, "
                          "electra."])

    def test_gin_file_rebuilds_the_model(self):
        plm = os.path.join(self.dir, "plm")
        run("hf", "plm_tf", "electra", self.hf, plm, generator_input=self.hf_generator)
        parse_gin([os.path.join(plm, "model.gin")])
        from plm_tf.models.builders import build_pretraining_model

        model = build_pretraining_model()
        self.assertEqual(model.generator_hidden_fraction, 0.5)
        self.assertEqual(model.encoder_config, electra_spec().encoder_config)
        model.build()
        tf.train.Checkpoint(model=model).read(os.path.join(plm, "ckpt")).assert_existing_objects_matched()
        for a, b in zip(self.model.weights, model.weights, strict=True):
            self.assertAllEqual(a, b)
        encoder_only = build_model(ModelSpec("electra", electra_spec().encoder_config, None))
        tf.train.Checkpoint(encoder=encoder_only).read(tf.train.latest_checkpoint(plm)).expect_partial()
        self.assertAllEqual(encoder_only.embeddings.word_embeddings, self.model.discriminator.embeddings.word_embeddings)

    def test_options_that_do_not_apply(self):
        with self.assertRaisesRegex(ConversionError, r"--generator_output does not apply to --from=hf"):
            run("hf", "plm_tf", "electra", self.hf, self.dir, generator_output=self.dir)
        with self.assertRaisesRegex(ConversionError, r"--from=tf1 --to=hf is not a conversion"):
            run("tf1", "hf", "bert", self.hf, self.dir)


class TrainerCheckpointTest(tf.test.TestCase):

    def test_trainer_style_model_dir_with_its_gin_file(self):
        """A model_dir as the trainer leaves it (ckpt-<step> with model, optimizer state and step; the recipe's
        gin file leaves vocab_size to the vocabulary) exports to HF with the checkpoint's vocabulary size."""
        parse_gin(["testing/electra_tiny.gin"], ["encoder_config.vocab_size = 23"])
        from plm_tf.models.builders import build_pretraining_model

        model = build_pretraining_model()
        model.build()
        model_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
        step = tf.Variable(6, dtype=tf.int64)
        checkpoint = tf.train.Checkpoint(model=model, step=step, extra=tf.Variable(1.0))
        tf.train.CheckpointManager(checkpoint, model_dir, max_to_keep=2, step_counter=step).save(checkpoint_number=6)
        out = os.path.join(model_dir, "hf")
        written = run("plm_tf", "hf", "electra", model_dir, out, generator_output=out + "_generator",
                      gin_files=["testing/electra_tiny.gin"])
        self.assertEqual(written, [out, out + "_generator"])
        tensors = safetensors.numpy.load_file(os.path.join(out, "model.safetensors"))
        self.assertEqual(tensors["electra.embeddings.word_embeddings.weight"].shape, (23, 16))
        np.testing.assert_array_equal(tensors["electra.encoder.layer.1.output.dense.weight"],
                                      model.discriminator.blocks[1].feed_forward_sublayer.output_dense.kernel.numpy().T)
