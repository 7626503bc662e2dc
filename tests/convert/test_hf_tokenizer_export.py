"""`convert --from=plm_tf --to=hf` writes tokenizer files that transformers' AutoTokenizer and pipeline() read."""
import os
import shutil
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from plm_tf.convert.__main__ import run
from plm_tf.convert.common import ModelSpec, build_model, write_plm_tf
from plm_tf.data import assets
from plm_tf.data.tokenizers import load_tokenizer

transformers = pytest.importorskip("transformers")

SENTENCES = ["It is a truth universally acknowledged, that a single man",
             "Mr. Darcy's   house -- at Pemberley!", "Élodie said: «café» costs 3.50"]
CASED = "Elizabeth BENNET walked to Netherfield"
# family → (objective, tokenizer kind, vocabulary files as named in a released folder → embedded asset)
FAMILIES = {
    "bert": ("mlm", "wordpiece", {"vocab.txt": "wordpiece_vocab.txt"}),
    "electra": ("electra", "wordpiece", {"vocab.txt": "wordpiece_vocab.txt"}),
    "albert": ("mlm_sop", "sentencepiece", {"spiece.model": "sentencepiece.model"}),
    "roberta": ("mlm", "bpe", {"vocab.json": "bpe/vocab.json", "merges.txt": "bpe/merges.txt"}),
}


def spec_for(family, vocab_size):
    objective = FAMILIES[family][0]
    offset = 2 if family == "roberta" else 0
    config = dict(vocab_size=vocab_size, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                  embedding_size=16, max_position_embeddings=32 + offset, type_vocab_size=1 if family == "roberta"
                  else 2, position_offset=offset, activation="gelu_exact", layer_norm_epsilon=1e-12, dropout_rate=0.1,
                  attention_dropout_rate=0.1, initializer_range=0.02, share="all" if family == "albert" else "none",
                  num_hidden_groups=1, inner_group_num=1, use_pooler=family != "electra")
    return ModelSpec(family, config, objective, generator_hidden_fraction=0.5 if family == "electra" else None,
                     tie_embeddings=True, has_generator=family == "electra")


class HfTokenizerExportTest(tf.test.TestCase):

    def convert(self, family, do_lower_case=None):
        """A tiny plm_tf model folder of `family` → HF folder; returns (HF folder, plm_tf tokenizer)."""
        root = tempfile.mkdtemp(dir=self.get_temp_dir())
        source = os.path.join(root, "release")
        os.makedirs(source)
        for name, asset in FAMILIES[family][2].items():
            shutil.copyfile(os.path.join(assets.assets_dir(), asset), os.path.join(source, name))
        kind = FAMILIES[family][1]
        tokenizer = load_tokenizer(kind, assets.default_vocab_path(kind), do_lower_case)
        spec = spec_for(family, tokenizer.vocab_size)
        model = build_model(spec)
        write_plm_tf(model, spec, os.path.join(root, "plm"), "test", vocab_dirs=(source,),
                     do_lower_case=do_lower_case)
        out = os.path.join(root, "hf")
        self.assertEqual(run("plm_tf", "hf", None, os.path.join(root, "plm"), out), [out])
        return out, tokenizer, model

    def assert_same_ids(self, out, tokenizer, sentences):
        hf = transformers.AutoTokenizer.from_pretrained(out)
        ours = tokenizer.tokenize(tf.constant(sentences)).to_list()
        for sentence, expected in zip(sentences, ours):
            self.assertEqual(hf(sentence, add_special_tokens=False)["input_ids"], expected, sentence)
        self.assertEqual((hf.cls_token_id, hf.sep_token_id, hf.pad_token_id, hf.mask_token_id, hf.unk_token_id),
                         (tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id, tokenizer.mask_id, tokenizer.unk_id))
        self.assertEqual(hf("a")["input_ids"][0], tokenizer.cls_id)
        self.assertEqual(hf.model_max_length, 32)
        return hf

    def test_bert_uncased_and_cased(self):
        out, tokenizer, _ = self.convert("bert")
        hf = self.assert_same_ids(out, tokenizer, SENTENCES + [CASED])
        self.assertTrue(hf.do_lower_case)
        out, tokenizer, _ = self.convert("bert", do_lower_case=False)
        hf = self.assert_same_ids(out, tokenizer, SENTENCES + [CASED])
        self.assertFalse(hf.do_lower_case)
        # The cased vocabulary-less capitals are [UNK] for both, where the uncased model found the words.
        self.assertIn(tokenizer.unk_id, hf(CASED, add_special_tokens=False)["input_ids"])

    def test_electra(self):
        out, tokenizer, _ = self.convert("electra")
        self.assertEqual(type(transformers.AutoTokenizer.from_pretrained(out)).__name__, "ElectraTokenizerFast")
        self.assert_same_ids(out, tokenizer, SENTENCES)

    def test_albert_sentencepiece(self):
        out, tokenizer, _ = self.convert("albert")
        self.assertTrue(os.path.exists(os.path.join(out, "spiece.model")))
        self.assert_same_ids(out, tokenizer, SENTENCES + [CASED])

    def test_roberta_byte_level_bpe(self):
        out, tokenizer, _ = self.convert("roberta")
        self.assert_same_ids(out, tokenizer, SENTENCES + [CASED])

    def test_fill_mask_pipeline(self):
        for family, text in (("bert", "she walked to the [MASK] ."), ("roberta", "She walked to the<mask>.")):
            out, tokenizer, model = self.convert(family)
            fill = transformers.pipeline("fill-mask", model=out, top_k=3, framework="pt")
            predictions = fill(text)
            self.assertLen(predictions, 3)
            scores = [p["score"] for p in predictions]
            self.assertEqual(scores, sorted(scores, reverse=True))
            # top-1 is the Keras model's argmax at the mask position
            ids = transformers.AutoTokenizer.from_pretrained(out)(text)["input_ids"]
            position = ids.index(tokenizer.mask_id)
            ids = tf.constant([ids], tf.int32)
            seq = model.encoder({"input_ids": ids, "input_mask": tf.ones_like(ids),
                                 "segment_ids": tf.zeros_like(ids)}, training=False)["sequence_output"]
            logits = model.masked_lm_head(seq, model.encoder.embedding_table, None)
            self.assertEqual(predictions[0]["token"], int(np.argmax(logits[0, position])), family)

    def test_vocabulary_of_another_size_writes_no_tokenizer(self):
        from plm_tf.convert.hf_tokenizer import write_hf_tokenizer
        from plm_tf.convert.model_dir import TokenizerSpec

        out = tempfile.mkdtemp(dir=self.get_temp_dir())
        config = spec_for("bert", 23).encoder_config
        self.assertEqual(write_hf_tokenizer(out, "bert", config, TokenizerSpec("wordpiece")), [])
        self.assertEqual(os.listdir(out), [])
        written = write_hf_tokenizer(out, "bert", dict(config, vocab_size=8445),
                                     TokenizerSpec("wordpiece", None, False))
        self.assertEqual(written, ["special_tokens_map.json", "tokenizer_config.json", "vocab.txt"])

    def test_feature_extraction_pipeline_matches_the_encoder(self):
        out, tokenizer, model = self.convert("albert")
        extract = transformers.pipeline("feature-extraction", model=out, framework="pt")
        features = np.asarray(extract("Emma walked to Hartfield.")[0])
        ids = tf.constant([[tokenizer.cls_id] + tokenizer.tokenize(tf.constant(["Emma walked to Hartfield."]))
                          .to_list()[0] + [tokenizer.sep_id]], tf.int32)
        reference = model.encoder({"input_ids": ids, "input_mask": tf.ones_like(ids),
                                   "segment_ids": tf.zeros_like(ids)}, training=False)["sequence_output"]
        np.testing.assert_allclose(features, reference.numpy()[0], atol=1e-4)

    def test_cased_fine_tuning_run(self):
        """A fine-tuning model_dir (task.json) records its tokenizer; its casing reaches tokenizer_config.json."""
        import json

        from plm_tf.finetuning.model import ClassifierModel, new_encoder

        run_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
        tokenizer = load_tokenizer("wordpiece", assets.default_vocab_path("wordpiece"), lower_case=False)
        config = spec_for("bert", tokenizer.vocab_size).encoder_config
        classifier = ClassifierModel(new_encoder(config), 2, name="classifier")
        classifier.build()
        tf.train.CheckpointManager(tf.train.Checkpoint(model=classifier), os.path.join(run_dir, "best"), 1).save()
        with open(os.path.join(run_dir, "task.json"), "w") as handle:
            json.dump({"model_type": "bert", "encoder_config": config, "tokenizer_kind": "wordpiece",
                       "vocab_path": None, "lower_case": False, "num_classes": 2, "label_names": ["0", "1"],
                       "dropout_rate": 0.1}, handle)
        out = os.path.join(run_dir, "hf")
        run("plm_tf", "hf", None, run_dir, out)
        hf = self.assert_same_ids(out, tokenizer, [CASED, "Mr. Darcy"])
        self.assertFalse(hf.do_lower_case)
