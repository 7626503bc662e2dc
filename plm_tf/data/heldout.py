"""A deterministic held-out slice of a corpus's documents, for evaluating pretraining on text never trained on.

A document (lines up to a blank line or the end of a file, `plm_tf.data.corpus`) is *held out* when the
FarmHash fingerprint of its first non-blank line (stripped) falls into bucket 0 of `HELDOUT_BUCKETS`
(`tf.strings.to_hash_bucket_fast`, stable across platforms and TensorFlow versions). The choice depends on the
document's text only — not on the file order, the epoch, the seed or the sharding — so the training stream
(`documents="train"`) and the evaluation stream (`documents="heldout"`) are disjoint in every epoch.
On the embedded Austen corpus 11 of the 269 chapters (505 of 9,991 lines) are held out.

`select_documents` filters a line stream in-graph with a `tf.data.Dataset.scan` whose state is two scalars;
blank lines are always kept (they only end documents, and the example builders tolerate repeated ends).
"""
import tensorflow as tf

DOCUMENT_SPLITS = ("all", "train", "heldout")
# 1 document in 20 (~5%) is held out, like a small dev slice of a corpus.
HELDOUT_BUCKETS = 20


def is_heldout_line(first_line):
    """tf.string [] or [N] first lines of documents → bool: the documents they start are held out."""
    return tf.equal(tf.strings.to_hash_bucket_fast(tf.strings.strip(first_line), HELDOUT_BUCKETS), 0)


def select_documents(lines, documents):
    """Keeps the lines of the `documents` split of a line dataset (tf.string []): "all", "train" or "heldout"."""
    if documents not in DOCUMENT_SPLITS:
        raise ValueError(f"documents must be one of {DOCUMENT_SPLITS}, got {documents!r}")
    if documents == "all":
        return lines
    want_heldout = documents == "heldout"

    def step(state, line):
        in_document, heldout = state
        blank = tf.equal(tf.strings.length(tf.strings.strip(line)), 0)
        starts = tf.logical_and(tf.logical_not(blank), tf.logical_not(in_document))
        heldout = tf.where(starts, is_heldout_line(line), heldout)
        keep = tf.logical_or(blank, tf.equal(heldout, want_heldout))
        return (tf.logical_not(blank), heldout), (line, keep)

    def kept(line, keep):
        return keep

    def text(line, keep):
        return line

    return lines.scan((tf.constant(False), tf.constant(False)), step).filter(kept).map(text)
