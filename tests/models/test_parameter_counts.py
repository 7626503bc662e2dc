"""Exact parameter counts of every published size (REFERENCE §1), from the gin files the CLI uses."""
import os
import subprocess
import sys

import tensorflow as tf

from plm_tf.gin_config import ConfigError, gin_dir
from plm_tf.models.encoder import TransformerEncoder
from plm_tf.models.parameter_counts import configured_counts, count_variables
from testing_utils import REPO_ROOT

# encoder incl. pooler where the family has one (ELECTRA: the discriminator, no pooler).
ENCODER = {
    "bert_base": 109_482_240,
    "bert_large": 335_141_888,
    "roberta_base": 124_645_632,
    "roberta_large": 355_359_744,
    "albert_base": 11_683_584,
    "albert_large": 17_683_968,
    "albert_xlarge": 58_724_864,
    "albert_xxlarge": 222_595_584,
    "electra_small": 13_483_008,
    "electra_base": 108_891_648,
    "electra_large": 334_092_288,
}
ELECTRA = {  # discriminator head, whole pretraining graph with shared embeddings counted once
    "electra_small": (66_049, 14_196_219),
    "electra_base": (591_361, 119_386_427),
    "electra_large": (None, 354_655_291),
}


def _counts(size, *bindings):
    return configured_counts([f"{size}.gin"], bindings)  # what scripts/count_params.py prints


# Every other gin file the repository ships, with the encoder count count_params.py prints for it (vocab_size
# None: sized from the embedded vocabulary of the objective's tokenizer, as `python -m plm_tf.train` does).
# The demo encoder: the embedded 8,445-token WordPiece vocab, embedding 64 (words, 128 positions, 2 segments,
# LayerNorm) projected to hidden 128, then 4 layers (Q/K/V/output, 2 LayerNorms, FFN 512).
DEMO_ENCODER = (8445 * 64 + 128 * 64 + 2 * 64 + 2 * 64 + 64 * 128 + 128
                + 4 * (4 * (128 * 128 + 128) + 2 * 2 * 128 + 128 * 512 + 512 + 512 * 128 + 128))
OTHER_MODEL_FILES = {
    "electra_cpu_hour": DEMO_ENCODER,
    "electra_demo": DEMO_ENCODER,
    "electra_demo_long": DEMO_ENCODER,
    "testing/albert_tiny": None,
    "testing/bert_tiny": None,
    "testing/electra_tiny": None,
    "testing/roberta_tiny": None,
}
# Fragments and recipes that describe no model on their own: count_params.py answers with one ConfigError line.
NOT_A_MODEL = ("base/albert", "base/bert", "base/electra", "base/roberta", "testing/tiny_encoder",
               "finetune/albert", "finetune/electra", "finetune/electra_small", "finetune/roberta")


class PublishedSizesTest(tf.test.TestCase):
    def test_every_published_size(self):
        for size, expected in ENCODER.items():
            with self.subTest(size=size):
                counts = _counts(size)
                self.assertEqual(counts["encoder"], expected)
                if size in ELECTRA:
                    head, total = ELECTRA[size]
                    if head is not None:
                        self.assertEqual(counts["discriminator_head"], head)
                    self.assertEqual(counts["pretraining_model"], total)
                    self.assertEqual(
                        total,
                        counts["encoder"] + counts["discriminator_head"] + counts["generator"] + counts["generator_head"],
                    )
                else:
                    # MLM head: dense H→E + LayerNorm + output bias V; the word table is tied, not counted again.
                    self.assertEqual(
                        counts["pretraining_model"],
                        counts["encoder"] + counts["masked_lm_head"] + counts.get("sentence_head", 0),
                    )

    def test_every_gin_file_the_repository_ships(self):
        shipped = {str(path.relative_to(gin_dir()))[:-len(".gin")]
                   for path in __import__("pathlib").Path(gin_dir()).rglob("*.gin")}
        self.assertEqual(shipped, set(ENCODER) | set(OTHER_MODEL_FILES) | set(NOT_A_MODEL))
        for name, expected in OTHER_MODEL_FILES.items():
            with self.subTest(gin_file=name):
                counts = _counts(name)
                if expected is not None:
                    self.assertEqual(counts["encoder"], expected)
                self.assertGreater(counts["pretraining_model"], counts["encoder"])
        for name in NOT_A_MODEL:
            with self.subTest(gin_file=name):
                with self.assertRaisesRegex(ConfigError, "no pretraining model|fragment"):
                    _counts(name)

    def test_electra_small_with_full_size_generator(self):
        counts = _counts("electra_small", "electra.generator_hidden_fraction = 1.0")
        self.assertEqual(counts["pretraining_model"], 23_122_875)

    def test_electra_untied_generator_embeddings_add_a_table(self):
        tied = _counts("electra_small")
        untied = _counts("electra_small", "electra.tie_embeddings = False")
        embeddings = 30522 * 128 + 512 * 128 + 2 * 128 + 2 * 128
        self.assertEqual(untied["pretraining_model"] - tied["pretraining_model"], embeddings)

    def test_count_params_script_prints_reference_numbers(self):
        result = subprocess.run(
            [sys.executable, os.path.join(REPO_ROOT, "scripts", "count_params.py"), "--gin_file=gin/electra_small.gin"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=True,
        )
        lines = dict(line.split(": ") for line in result.stdout.strip().splitlines())
        self.assertEqual(lines["encoder"], "13483008")
        self.assertEqual(lines["pretraining_model"], "14196219")


class AlbertAblationCountsTest(tf.test.TestCase):
    """ALBERT paper Tables 3–4 (base, with pooler), in millions to one decimal."""

    def _millions(self, embedding_size, share):
        encoder = TransformerEncoder(
            vocab_size=30000, hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072,
            embedding_size=embedding_size, share=share,
        )
        encoder.build()
        return round(count_variables(encoder) / 1e6, 1)

    def test_sharing_ablations(self):
        expected = {
            (64, "none"): 87.6, (128, "none"): 89.7, (256, "none"): 93.7, (768, "none"): 109.1,
            (64, "all"): 9.7, (128, "all"): 11.7, (256, "all"): 15.7, (768, "all"): 31.1,
            (768, "attention"): 83.1, (768, "ffn"): 57.1, (128, "attention"): 63.6, (128, "ffn"): 37.7,
        }
        for (embedding_size, share), millions in expected.items():
            with self.subTest(embedding_size=embedding_size, share=share):
                self.assertEqual(self._millions(embedding_size, share), millions)


if __name__ == "__main__":
    tf.test.main()
