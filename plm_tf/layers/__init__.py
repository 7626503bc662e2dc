"""Keras 3 building blocks: embeddings, attention, the post-LN transformer block, output heads."""
from plm_tf.layers.activations import gelu_exact, gelu_tanh, get_activation
from plm_tf.layers.attention import MultiHeadSelfAttention
from plm_tf.layers.classification_head import ClassificationHead, sentence_pair_head
from plm_tf.layers.dropout import Dropout
from plm_tf.layers.discriminator_head import ReplacedTokenHead
from plm_tf.layers.embeddings import TransformerEmbeddings
from plm_tf.layers.layer_norm import LayerNorm
from plm_tf.layers.masked_lm_head import MaskedLMHead, gather_positions
from plm_tf.layers.transformer_block import AttentionSublayer, FeedForwardSublayer, TransformerBlock
