"""Every variable of every family starts from the distribution its original codebase uses.

The initializer family of each variable is read from its values (zeros, ones, truncated normal 0.02 —
nothing beyond 2σ = 0.04 —, or Glorot uniform — bounded by √(6 / (fan_in + fan_out)) and wider than 0.04) and
compared with the table below, taken from the originals:
- google-research/bert `modeling.py`: every kernel and embedding table `create_initializer` (truncated normal
  0.02), biases zero, LayerNorm γ = 1, β = 0; `run_pretraining.py` MLM transform and NSP output the same.
- google-research/albert: the same, including `embedding_hidden_mapping_in` (`dense_layer_2d` with
  `create_initializer`) and the SOP head.
- google-research/electra: the same except `embeddings_project` (`tf.layers.dense(..., name=
  "embeddings_project")`, both towers) and the discriminator's output layer (`tf.layers.dense(hidden,
  units=1)`), which take tf.layers.dense's default Glorot uniform; the discriminator's hidden dense and the
  generator head use `create_initializer`.
- fairseq RoBERTa (`init_bert_params`): Linear and Embedding weights normal(0, 0.02), biases zero. plm_tf
  draws them truncated at 2σ like the Google codebases (std 0.0176 instead of 0.02) and does not zero the
  padding rows (never read: padded positions are masked, position rows start at 2) — listed here as
  truncated_normal so that a change is deliberate.
"""
import re

import numpy as np
import tensorflow as tf

from plm_tf.data import pipelines
from plm_tf.gin_config import parse_gin, query_or_none
from plm_tf.models.builders import build_pretraining_model
from plm_tf.models.configs import bind_vocab_size

TRUNCATED, GLOROT, ZEROS, ONES = "truncated_normal(0.02)", "glorot_uniform", "zeros", "ones"

# (variable path pattern, family), first match wins; per family gin file.
COMMON = [(r"/gamma$", ONES), (r"/(beta|bias|output_bias)$", ZEROS), (r"(kernel|_embeddings)$", TRUNCATED)]
EXPECTED = {
    "testing/bert_tiny.gin": COMMON,
    "testing/roberta_tiny.gin": COMMON,
    "testing/albert_tiny.gin": COMMON,
    "testing/electra_tiny.gin": [(r"/embedding_projection/kernel$", GLOROT),
                                 (r"discriminator_head/prediction/kernel$", GLOROT)] + COMMON,
}


def observed_family(values):
    """The initializer family that `values` (a freshly initialised weight) were drawn from."""
    values = np.asarray(values, np.float64)
    if not values.any():
        return ZEROS
    if np.all(values == 1.0):
        return ONES
    largest = np.abs(values).max()
    if largest <= 0.04 + 1e-7:
        if values.size >= 200:  # the truncated normal's std (0.88 · 0.02) is measurable
            assert 0.0160 < values.std() < 0.0192, values.std()
        return TRUNCATED
    if values.ndim == 2 and largest <= np.sqrt(6.0 / sum(values.shape)) + 1e-7:
        return GLOROT
    return f"unknown (max |x| {largest:.3g})"


def expected_family(table, path):
    for pattern, family in table:
        if re.search(pattern, path):
            return family
    return "no rule"


class InitializerFamiliesTest(tf.test.TestCase):
    def test_every_variable_of_every_family(self):
        listing = []
        for gin_file, table in EXPECTED.items():
            parse_gin([gin_file])
            objective = query_or_none("build_pretraining_model.objective")
            bind_vocab_size(pipelines.load_tokenizer(pipelines.DEFAULT_TOKENIZER[objective]))
            model = build_pretraining_model()
            model.build()
            for variable in model.weights:
                got, want = observed_family(variable.numpy()), expected_family(table, variable.path)
                listing.append(f"{gin_file}: {variable.path} {tuple(variable.shape)} {got}")
                self.assertEqual(got, want, msg=f"{gin_file}: {variable.path}")
        print("\n".join(listing))  # the audit table (pytest -s shows it)
        families = {line.rsplit(" ", 1)[-1] for line in listing}
        self.assertEqual(families, {TRUNCATED, GLOROT, ZEROS, ONES})
