"""plm_tf.data.heldout: the held-out slice is decided per document, and the training and evaluation streams
of the pretraining pipeline never share a document."""
import gzip
import os

import numpy as np
import tensorflow as tf

from plm_tf.data import corpus, heldout, pipelines

HELDOUT_WORD, TRAIN_WORD = "elizabeth", "darcy"


def write_corpus(path, num_documents=60):
    """Documents whose first line is unique; held-out ones contain only HELDOUT_WORD, the others TRAIN_WORD.
    Returns the list of held-out flags, decided with the module's own hash of the first line."""
    first_lines = [f"chapter {i} opens here" for i in range(num_documents)]
    flags = [bool(flag) for flag in heldout.is_heldout_line(tf.constant(first_lines)).numpy()]
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for first, flag in zip(first_lines, flags):
            word = HELDOUT_WORD if flag else TRAIN_WORD
            handle.write(first + "\n" + " ".join([word] * 12) + "\n" + " ".join([word] * 9) + "\n\n")
    return flags


class HeldoutTest(tf.test.TestCase):
    def setUp(self):
        super().setUp()
        self.path = os.path.join(self.get_temp_dir(), "corpus.txt.gz")
        self.flags = write_corpus(self.path)

    def test_split_partitions_documents(self):
        self.assertTrue(0 < sum(self.flags) < len(self.flags))
        lines = {split: [line.decode() for line in heldout.select_documents(corpus.line_dataset([self.path]), split)
                         .as_numpy_iterator() if line.strip()] for split in heldout.DOCUMENT_SPLITS}
        starts = {split: [line for line in lines[split] if line.startswith("chapter")] for split in lines}
        expected = [f"chapter {i} opens here" for i, flag in enumerate(self.flags) if flag]
        self.assertEqual(starts["heldout"], expected)
        self.assertEqual(len(starts["train"]) + len(starts["heldout"]), len(self.flags))
        self.assertEqual(sorted(lines["train"] + lines["heldout"]), sorted(lines["all"]))
        self.assertNotIn(HELDOUT_WORD, " ".join(lines["train"]))
        self.assertNotIn(TRAIN_WORD, " ".join(lines["heldout"]))

    def test_pipeline_streams_are_disjoint_in_every_epoch(self):
        tokenizer = pipelines.load_tokenizer("wordpiece")
        heldout_id, train_id = (int(tokenizer.tokenize(tf.constant([w])).flat_values[0]) for w in
                                (HELDOUT_WORD, TRAIN_WORD))
        seen = {}
        for split in ("train", "heldout"):
            ds = pipelines.pretraining_dataset(objective="electra", corpus_paths=[self.path], seq_len=32,
                                               batch_size=4, documents=split, num_epochs=3, seed=5)
            ids = []
            for batch in ds.as_numpy_iterator():  # the original tokens: masked slots restored
                originals = batch["input_ids"].copy()
                for row in range(originals.shape[0]):
                    keep = batch["masked_lm_weights"][row] > 0
                    originals[row, batch["masked_lm_positions"][row][keep]] = batch["masked_lm_ids"][row][keep]
                ids.append(originals.ravel())
            seen[split] = set(np.concatenate(ids).tolist())
        self.assertIn(train_id, seen["train"])
        self.assertNotIn(heldout_id, seen["train"])
        self.assertIn(heldout_id, seen["heldout"])
        self.assertNotIn(train_id, seen["heldout"])

    def test_bad_split_is_rejected(self):
        with self.assertRaisesRegex(pipelines.PipelineError, "documents must be one of"):
            pipelines.pretraining_dataset(objective="electra", corpus_paths=[self.path], documents="dev")
        with self.assertRaisesRegex(pipelines.PipelineError, "num_epochs"):
            pipelines.pretraining_dataset(objective="electra", corpus_paths=[self.path], num_epochs=0)
