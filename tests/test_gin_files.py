"""Every gin file in gin/ parses (no typo waits for the run that happens to use it). The base/ files are
fragments that use macros the size files define (TRAIN_STEPS); they are parsed through those includes."""
import pathlib

import tensorflow as tf

from plm_tf.gin_config import parse_gin, query_or_none

GIN_DIR = pathlib.Path(__file__).resolve().parent.parent / "gin"


class GinFilesTest(tf.test.TestCase):

    def test_every_file_parses(self):
        files = sorted(path for path in GIN_DIR.rglob("*.gin") if path.parent.name != "base")
        self.assertGreater(len(files), 20)
        for path in files:
            with self.subTest(gin_file=str(path.relative_to(GIN_DIR))):
                parse_gin([str(path)])

    def test_demo_long_is_the_demo_model_with_a_longer_schedule(self):
        parse_gin(["electra_demo.gin"])
        demo = {name: query_or_none(name) for name in (
            "encoder_config.num_layers", "encoder_config.hidden_size", "encoder_config.embedding_size",
            "electra.generator_hidden_fraction", "pretrain.batch_size", "pretrain.seq_len")}
        parse_gin(["electra_demo_long.gin"])
        self.assertEqual({name: query_or_none(name) for name in demo}, demo)
        self.assertEqual(query_or_none("pretrain.train_steps"), 12000)
        self.assertEqual(query_or_none("WarmupPolynomialDecayProduct.num_train_steps"), 12000)
        self.assertEqual(query_or_none("WarmupPolynomialDecayProduct.peak_learning_rate"), 2e-4)


if __name__ == "__main__":
    tf.test.main()
