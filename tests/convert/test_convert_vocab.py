"""plm_tf.convert.vocab: the tokenizer a converted folder records — vocabulary from tokenizer.json, casing,
special tokens — checked against Hugging Face `tokenizers` where it is installed."""
import json
import os
import shutil
import tempfile

import tensorflow as tf

from plm_tf.convert import ConversionError
from plm_tf.convert.vocab import tokenizer_settings
from plm_tf.data.tokenizers import load_tokenizer
from testing_utils import REPO_ROOT

ASSETS = REPO_ROOT / "plm_tf" / "assets"
WORDPIECE = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "Hello", "hello", "world", ",", "!", "##s", "cafe", "café"]

try:
    import tokenizers
except ImportError:  # pragma: no cover - depends on the environment
    tokenizers = None


def wordpiece_json(lowercase):
    return {"version": "1.0", "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                                             "strip_accents": None, "lowercase": lowercase},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 100, "vocab": {t: i for i, t in enumerate(WORDPIECE)}}}


class TokenizerSettingsTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(dir=self.get_temp_dir())
        self.source = os.path.join(self.dir, "source")
        self.out = os.path.join(self.dir, "out")
        os.makedirs(self.source)

    def write(self, name, value):
        with open(os.path.join(self.source, name), "w", encoding="utf-8") as handle:
            json.dump(value, handle)

    def test_wordpiece_from_tokenizer_json_keeps_ids_and_casing(self):
        self.write("tokenizer.json", wordpiece_json(lowercase=False))
        record = tokenizer_settings("bert", [self.source], self.out)
        self.assertEqual(record["vocab"], "vocab.txt")
        self.assertFalse(record["lower_case"])
        with open(os.path.join(self.out, "vocab.txt"), encoding="utf-8") as handle:
            self.assertEqual(handle.read().split("\n")[:-1], WORDPIECE)
        tokenizer = load_tokenizer("wordpiece", os.path.join(self.out, "vocab.txt"), record["lower_case"])
        ids = tokenizer.tokenize(tf.constant(["Hello worlds, hello!"])).numpy()[0].tolist()
        self.assertEqual(ids, [5, 7, 10, 8, 6, 9])  # "Hello" stays cased
        if tokenizers is not None:
            reference = tokenizers.Tokenizer.from_file(os.path.join(self.source, "tokenizer.json"))
            self.assertEqual(reference.encode("Hello worlds, hello!", add_special_tokens=False).ids, ids)

    def test_casing_sources_in_order(self):
        self.write("tokenizer.json", wordpiece_json(lowercase=True))
        self.assertTrue(tokenizer_settings("bert", [self.source], self.out)["lower_case"])
        self.write("tokenizer_config.json", {"do_lower_case": False})  # the tokenizer class's own flag wins
        record = tokenizer_settings("bert", [self.source], self.out)
        self.assertFalse(record["lower_case"])
        self.assertTrue(record["lower_case_from"].endswith("tokenizer_config.json"))
        self.assertTrue(tokenizer_settings("bert", [self.source], self.out, do_lower_case=True)["lower_case"])

    def test_tf1_config_and_release_names(self):
        release = os.path.join(self.dir, "cased_L-12_H-768_A-12")
        os.makedirs(release)
        with open(os.path.join(release, "vocab.txt"), "w", encoding="utf-8") as handle:
            handle.write("\n".join(WORDPIECE) + "\n")
        prefix = os.path.join(release, "bert_model.ckpt")
        self.assertFalse(tokenizer_settings("bert", [release], self.out, tf1_path=prefix)["lower_case"])
        self.assertTrue(tokenizer_settings("bert", [release], self.out, tf1_config={"do_lower_case": True},
                                           tf1_path=prefix)["lower_case"])
        self.assertTrue(tokenizer_settings("electra", [release], self.out)["lower_case"])  # family default

    def test_byte_level_bpe_from_tokenizer_json_matches_tokenizers(self):
        if tokenizers is None:
            self.skipTest("the `tokenizers` package writes the reference tokenizer.json")
        with open(ASSETS / "bpe" / "vocab.json", encoding="utf-8") as handle:
            vocab = json.load(handle)
        with open(ASSETS / "bpe" / "merges.txt", encoding="utf-8") as handle:
            merges = [tuple(line.split(" ")) for line in handle.read().split("\n")[1:] if line]
        reference = tokenizers.Tokenizer(tokenizers.models.BPE(vocab, merges))
        reference.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
        reference.save(os.path.join(self.source, "tokenizer.json"))
        record = tokenizer_settings("roberta", [self.source], self.out)
        self.assertEqual((record["kind"], record["vocab"], record["lower_case"]), ("bpe", "vocab.json", False))
        text = "It is a truth universally acknowledged, that a single man's  fortune...\tWell?"
        ids = load_tokenizer("bpe", os.path.join(self.out, "vocab.json")).tokenize(tf.constant([text])).numpy()[0]
        self.assertEqual(reference.encode(text).ids, ids.tolist())
        with self.assertRaisesRegex(ConversionError, "Byte-level BPE never lowercases"):
            tokenizer_settings("roberta", [self.source], self.out, do_lower_case=True)

    def test_refusals_name_the_problem(self):
        self.assertIsNone(tokenizer_settings("bert", [self.source], self.out))  # nothing shipped
        self.write("tokenizer.json", {"model": {"type": "Unigram", "vocab": [["<unk>", 0.0]]}})
        with self.assertRaisesRegex(ConversionError, r"'Unigram' tokenizer model.*spiece.model"):
            tokenizer_settings("albert", [self.source], self.out)
        self.write("tokenizer.json", wordpiece_json(lowercase=True))
        self.write("special_tokens_map.json", {"cls_token": "<s>", "sep_token": {"content": "[SEP]"}})
        with self.assertRaisesRegex(ConversionError, r"cls_token '<s>' \(plm_tf's wordpiece uses '\[CLS\]'\)"):
            tokenizer_settings("bert", [self.source], self.out)
        os.remove(os.path.join(self.source, "special_tokens_map.json"))
        with self.assertRaisesRegex(ConversionError, r"A albert model needs a sentencepiece vocabulary"):
            tokenizer_settings("albert", [self.source], os.path.join(self.dir, "out2"))
        shutil.copyfile(ASSETS / "sentencepiece.model", os.path.join(self.source, "spiece.model"))
        record = tokenizer_settings("albert", [self.source], os.path.join(self.dir, "out3"))
        self.assertEqual((record["kind"], record["vocab"]), ("sentencepiece", "spiece.model"))
