"""gin's `encoder_config` mirrors `TransformerEncoder`'s constructor (plm_tf.models.configs)."""
import inspect

import gin
import tensorflow as tf

from plm_tf.models import configs
from plm_tf.models.encoder import TransformerEncoder

# Constructor arguments that are objects, not configuration.
NOT_CONFIGURABLE = {"self", "embeddings", "kwargs"}


class EncoderConfigTest(tf.test.TestCase):

    def test_same_arguments_and_defaults_as_the_encoder(self):
        encoder = inspect.signature(TransformerEncoder.__init__).parameters
        config = inspect.signature(configs.encoder_config.__wrapped__).parameters
        self.assertEqual(sorted(config), sorted(set(encoder) - NOT_CONFIGURABLE))
        for name, parameter in config.items():
            if parameter.default is gin.REQUIRED:  # gin's marker for "no default"
                self.assertIs(encoder[name].default, inspect.Parameter.empty, msg=name)
            else:
                self.assertEqual(parameter.default, encoder[name].default, msg=name)

    def test_returns_every_argument_and_embedding_size_defaults_to_hidden(self):
        config = configs.encoder_config.__wrapped__(vocab_size=10, hidden_size=8, num_layers=1, num_heads=2,
                                                    intermediate_size=16)
        self.assertEqual(config["embedding_size"], 8)
        encoder = TransformerEncoder(**config)
        self.assertEqual(encoder.get_config()["embedding_size"], 8)


if __name__ == "__main__":
    tf.test.main()
