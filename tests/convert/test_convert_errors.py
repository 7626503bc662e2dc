"""Bad input to the converters: one ConversionError whose message names the tensor or setting.

HF folders are produced by plm_tf's own exporter from random plm_tf models and then damaged, so these tests
need neither torch nor transformers.
"""
import json
import os
import tempfile

import numpy as np
import safetensors.numpy
import tensorflow as tf

from plm_tf.convert import ConversionError, hf_to_plm_tf, plm_tf_to_hf, read_plm_tf, tf1_to_plm_tf
from plm_tf.convert.common import ModelSpec, build_model


def encoder_config(**overrides):
    config = dict(vocab_size=40, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=24, embedding_size=16,
                  max_position_embeddings=20, type_vocab_size=2, position_offset=0, activation="gelu_exact",
                  layer_norm_epsilon=1e-12, dropout_rate=0.0, attention_dropout_rate=0.0, initializer_range=0.02,
                  share="none", num_hidden_groups=1, inner_group_num=1, use_pooler=True)
    config.update(overrides)
    return config


class HFBadInputTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())

    def hf_folder(self, spec=None, name="hf", generator_name=None):
        spec = spec or ModelSpec("bert", encoder_config(), "mlm_nsp")
        model = build_model(spec)
        folder = os.path.join(self.dir, name)
        generator = os.path.join(self.dir, generator_name) if generator_name else None
        plm_tf_to_hf(model, spec, folder, generator_output=generator)
        return folder

    def edit_tensors(self, folder, edit):
        path = os.path.join(folder, "model.safetensors")
        tensors = safetensors.numpy.load_file(path)
        edit(tensors)
        safetensors.numpy.save_file(tensors, path, metadata={"format": "pt"})

    def edit_config(self, folder, **values):
        path = os.path.join(folder, "config.json")
        with open(path) as handle:
            config = json.load(handle)
        config.update(values)
        with open(path, "w") as handle:
            json.dump(config, handle)

    def convert(self, folder, model_type="bert", **kwargs):
        return hf_to_plm_tf(folder, os.path.join(self.dir, "out"), model_type, **kwargs)

    def test_clean_folder_converts(self):
        _, spec = self.convert(self.hf_folder())
        self.assertEqual(spec.objective, "mlm_nsp")

    def test_shape_that_does_not_match_the_config(self):
        folder = self.hf_folder()
        self.edit_config(folder, intermediate_size=32)
        with self.assertRaisesRegex(ConversionError, r"tensor 'bert\.encoder\.layer\.0\.intermediate\.dense\.weight' "
                                                     r"has shape \[24, 16\], but the configuration implies \[32, 16\]"):
            self.convert(folder)

    def test_missing_tensor(self):
        folder = self.hf_folder()
        self.edit_tensors(folder, lambda t: t.pop("bert.encoder.layer.1.output.LayerNorm.bias"))
        with self.assertRaisesRegex(ConversionError, r"missing tensor 'bert\.encoder\.layer\.1\.output\.LayerNorm\.bias'"):
            self.convert(folder)

    def test_unexpected_extra_tensor(self):
        folder = self.hf_folder()
        self.edit_tensors(folder, lambda t: t.update({"classifier.weight": np.zeros((3, 16), np.float32)}))
        with self.assertRaisesRegex(ConversionError, r"unexpected tensor 'classifier\.weight'"):
            self.convert(folder)

    def test_extra_layer_beyond_the_configured_depth(self):
        folder = self.hf_folder()
        self.edit_config(folder, num_hidden_layers=1)
        with self.assertRaisesRegex(ConversionError, r"unexpected tensor 'bert\.encoder\.layer\.1\."):
            self.convert(folder)

    def test_unknown_model_type(self):
        folder = self.hf_folder()
        with self.assertRaisesRegex(ConversionError, r"Unknown model type 'gpt2'; expected one of bert, roberta"):
            self.convert(folder, "gpt2")

    def test_model_type_that_contradicts_config(self):
        folder = self.hf_folder()
        with self.assertRaisesRegex(ConversionError, r"model_type is 'bert', not 'roberta'"):
            self.convert(folder, "roberta")

    def test_pickle_only_folder_is_refused(self):
        folder = os.path.join(self.dir, "pickled")
        os.makedirs(folder)
        with open(os.path.join(folder, "config.json"), "w") as handle:
            json.dump({"model_type": "bert"}, handle)
        open(os.path.join(folder, "pytorch_model.bin"), "wb").close()
        with self.assertRaisesRegex(ConversionError, r"pytorch_model\.bin are pickle files"):
            self.convert(folder)

    def test_untied_decoder_weight(self):
        folder = self.hf_folder()
        self.edit_tensors(folder, lambda t: t.update(
            {"cls.predictions.decoder.weight": t["bert.embeddings.word_embeddings.weight"] + 1.0}))
        with self.assertRaisesRegex(ConversionError, r"'cls\.predictions\.decoder\.weight' should be tied"):
            self.convert(folder)

    def test_unsupported_activation(self):
        folder = self.hf_folder()
        self.edit_config(folder, hidden_act="quick_gelu")
        with self.assertRaisesRegex(ConversionError, r"hidden_act 'quick_gelu'"):
            self.convert(folder)

    def test_albert_without_factorised_embeddings_but_a_real_mapping(self):
        spec = ModelSpec("albert", encoder_config(share="all", embedding_size=8), "mlm")
        folder = self.hf_folder(spec)
        self.edit_config(folder, embedding_size=16)
        with self.assertRaisesRegex(ConversionError, r"'albert\.embeddings\.word_embeddings\.weight' has shape \[40, 8\]"):
            self.convert(folder, "albert")

    def test_electra_generator_that_plm_tf_cannot_derive(self):
        spec = ModelSpec("electra", encoder_config(use_pooler=False), "electra", generator_hidden_fraction=0.5)
        folder = self.hf_folder(spec, generator_name="generator")
        generator = os.path.join(self.dir, "generator")
        self.edit_config(generator, num_attention_heads=2)
        with self.assertRaisesRegex(ConversionError, r"generator num_heads = 2, but plm_tf derives 1"):
            self.convert(folder, "electra", generator_input=generator)

    def test_generator_input_needs_a_discriminator(self):
        folder = self.hf_folder()
        with self.assertRaisesRegex(ConversionError, r"--generator_input needs an ELECTRA discriminator"):
            self.convert(folder, "bert", generator_input=folder)


class PlmTfBadInputTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())

    def test_objective_without_an_hf_head(self):
        spec = ModelSpec("roberta", encoder_config(type_vocab_size=1, position_offset=2), "mlm_nsp")
        with self.assertRaisesRegex(ConversionError, r"HF roberta has no model for the 'mlm_nsp' objective"):
            plm_tf_to_hf(build_model(spec), spec, os.path.join(self.dir, "hf"))

    def test_roberta_head_needs_exact_gelu(self):
        spec = ModelSpec("roberta", encoder_config(type_vocab_size=1, position_offset=2, activation="gelu_tanh"), "mlm")
        with self.assertRaisesRegex(ConversionError, r"exact GELU"):
            plm_tf_to_hf(build_model(spec), spec, os.path.join(self.dir, "hf"))

    def test_checkpoint_that_does_not_fit_the_gin_file(self):
        spec = ModelSpec("bert", encoder_config(), "mlm")
        folder = os.path.join(self.dir, "hf")
        plm_tf_to_hf(build_model(spec), spec, folder)
        hf_to_plm_tf(folder, os.path.join(self.dir, "plm"), "bert")
        with self.assertRaisesRegex(ConversionError, r"does not fit the model built from .*model\.gin"):
            read_plm_tf(os.path.join(self.dir, "plm"), "bert", gin_params=["encoder_config.intermediate_size = 8"])
        with self.assertRaisesRegex(ConversionError, r"does not hold every variable"):
            read_plm_tf(os.path.join(self.dir, "plm"), "bert", gin_params=["encoder_config.num_layers = 3"])

    def test_missing_gin_file(self):
        spec = ModelSpec("bert", encoder_config(), None)
        model = build_model(spec)
        prefix = tf.train.Checkpoint(model=model).write(os.path.join(self.dir, "run", "ckpt-5"))
        with self.assertRaisesRegex(ConversionError, r"No gin file given .*pass --gin_file"):
            read_plm_tf(prefix, "bert")


class TF1BadInputTest(tf.test.TestCase):

    def write(self, tensors, config=None):
        directory = tempfile.mkdtemp(dir=self.get_temp_dir())
        names = sorted(tensors)
        prefix = os.path.join(directory, "model.ckpt")
        tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                          tensors=[tf.constant(tensors[name]) for name in names])
        if config is not None:
            with open(os.path.join(directory, "bert_config.json"), "w") as handle:
                json.dump(config, handle)
        return prefix

    def bert_tensors(self):
        from plm_tf.convert import tf1

        spec = ModelSpec("bert", encoder_config(hidden_size=64, embedding_size=64, num_heads=1), None)
        model = build_model(spec)
        return {slot.names[0]: slot.variable.numpy().T if slot.transpose else slot.variable.numpy()
                for slot in tf1.model_slots(model, spec)}

    def convert(self, prefix, model_type="bert"):
        return tf1_to_plm_tf(prefix, os.path.join(os.path.dirname(prefix), "out"), model_type)

    def test_clean_checkpoint_converts(self):
        _, spec = self.convert(self.write(self.bert_tensors()))
        self.assertEqual(spec.encoder_config["num_layers"], 2)

    def test_shape_that_does_not_match_the_config(self):
        prefix = self.write(self.bert_tensors(), {"hidden_size": 64, "num_attention_heads": 1, "intermediate_size": 32})
        with self.assertRaisesRegex(ConversionError, r"tensor 'bert/encoder/layer_0/intermediate/dense/kernel' has "
                                                     r"shape \[64, 24\], but the configuration implies \[64, 32\]"):
            self.convert(prefix)

    def test_missing_tensor(self):
        tensors = self.bert_tensors()
        del tensors["bert/encoder/layer_1/attention/output/LayerNorm/gamma"]
        with self.assertRaisesRegex(ConversionError, r"missing tensor 'bert/encoder/layer_1/attention/output/LayerNorm/"
                                                     r"gamma'"):
            self.convert(self.write(tensors))

    def test_unexpected_extra_tensor(self):
        tensors = self.bert_tensors()
        tensors["output_weights"] = np.zeros((3, 64), np.float32)  # a fine-tuning classifier
        with self.assertRaisesRegex(ConversionError, r"unexpected tensor 'output_weights'"):
            self.convert(self.write(tensors))

    def test_unknown_model_type(self):
        with self.assertRaisesRegex(ConversionError, r"Unknown model type 'xlnet'"):
            self.convert(self.write(self.bert_tensors()), "xlnet")

    def test_wrong_family_names_the_missing_tensor(self):
        with self.assertRaisesRegex(ConversionError, r"missing tensor 'electra/embeddings/word_embeddings'"):
            self.convert(self.write(self.bert_tensors()), "electra")

    def test_not_a_checkpoint(self):
        with self.assertRaisesRegex(ConversionError, r"neither a checkpoint prefix"):
            self.convert(os.path.join(self.get_temp_dir(), "nothing", "model.ckpt"))
