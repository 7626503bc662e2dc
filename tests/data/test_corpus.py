"""Corpus reading: formats, many files, documents, bad input (plm_tf.data.corpus, plm_tf.data.tfds_corpus)."""
import gzip
import os
import pathlib

import keras
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

import testing_utils
from plm_tf.data import corpus
from plm_tf.data import tfds_corpus
from plm_tf.data.tokenizers import load_tokenizer

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
CORPUS = FIXTURES / "austen_small.txt"
VOCAB = FIXTURES / "wordpiece_vocab.txt"


def python_documents(text):
    return [d.split("\n") for d in text.rstrip("\n").split("\n\n")]


class ReadTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.get_temp_dir()

    def write(self, name, data, gz=False):
        path = os.path.join(self.dir, name)
        opener = gzip.open if gz else open
        with opener(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        return path

    def test_documents_of_plain_and_gzip_files(self):
        text = CORPUS.read_text(encoding="utf-8")
        expected = python_documents(text)
        half = text.index("\n\n", len(text) // 2)
        d = os.path.join(self.dir, "mixed")
        os.makedirs(d)
        with open(os.path.join(d, "a.txt"), "w", encoding="utf-8") as f:
            f.write(text[:half + 1])
        with gzip.open(os.path.join(d, "b.txt.gz"), "wt", encoding="utf-8") as f:
            f.write(text[half + 2:])
        for paths in (d, os.path.join(d, "*"), [os.path.join(d, "a.txt"), os.path.join(d, "b.txt.gz")]):
            files = corpus.prepare_files(paths)
            self.assertLen(files, 2)
            docs = [[l.decode() for l in doc] for doc in corpus.document_dataset(files).as_numpy_iterator()]
            self.assertEqual(docs, expected)

    def test_line_dataset_marks_file_ends(self):
        a = self.write("a.txt", "one\ntwo\n")
        b = self.write("b.txt.gz", "three\n\nfour\n", gz=True)
        lines = [l.decode() for l in corpus.line_dataset([a, b]).as_numpy_iterator()]
        self.assertEqual(lines, ["one", "two", "", "three", "", "four", ""])
        shuffled = [l.decode() for l in corpus.line_dataset([a, b], shuffle_seed=3).as_numpy_iterator()]
        self.assertCountEqual(shuffled, lines)

    def test_file_order_shuffle_takes_a_tensor_seed_per_epoch(self):
        # Pipelines reshuffle the file order each epoch with a seed computed from the epoch tensor of
        # Dataset.range(...).flat_map; every epoch must still read each file exactly once, in an order that
        # depends only on that seed (the trainer also sets a global seed).
        keras.utils.set_random_seed(1)
        files = [self.write(f"f{i}.txt", f"file{i}\n") for i in range(4)]

        def epoch_lines(epoch):
            return corpus.line_dataset(files, shuffle_seed=epoch * 1000003 + 7).filter(
                lambda line: tf.strings.length(line) > 0)

        lines = [l.decode() for l in tf.data.Dataset.range(12).flat_map(epoch_lines).as_numpy_iterator()]
        orders = [tuple(lines[i:i + 4]) for i in range(0, len(lines), 4)]
        self.assertLen(orders, 12)
        for order in orders:
            self.assertCountEqual(order, [f"file{i}" for i in range(4)])
        self.assertGreater(len(set(orders)), 3)  # 24 possible orders; 12 epochs give several distinct ones
        again = [l.decode() for l in tf.data.Dataset.range(12).flat_map(epoch_lines).as_numpy_iterator()]
        self.assertEqual(lines, again)

    def test_token_items(self):
        tok = load_tokenizer("wordpiece", VOCAB)
        path = self.write("c.txt", "the the the the the the the the the the the the\n\nof\n")
        items = list(corpus.token_item_dataset(corpus.line_dataset([path]), tok, 5).as_numpy_iterator())
        kinds = [int(k) for _, k in items]
        self.assertEqual(kinds, [0, 0, 0, 1, 0, 1, 2])  # 12 tokens -> 5 + 5 + 2 (long line split), doc end
        self.assertEqual([len(ids) for ids, _ in items], [5, 5, 2, 0, 1, 0, 0])

    def test_batch_without_tokens_does_not_crash(self):
        """A tokenizer batch whose kept lines are all blank was a [k, 0] tensor, which `unbatch` turned into a
        segmentation fault (TensorFlow 2.21)."""
        tok = load_tokenizer("wordpiece", VOCAB)
        path = self.write("blanks.txt", "\n\n\x01\x02\n\nthe of\n")
        items = list(corpus.token_item_dataset(corpus.line_dataset([path]), tok, 5, batch_lines=3)
                     .as_numpy_iterator())
        self.assertEqual([int(k) for _, k in items], [1, 1, 1, 0, 1, 2])  # the control-character line has no token
        self.assertEqual([len(ids) for ids, _ in items], [0, 0, 0, 2, 0, 0])

    def test_corpus_without_tokens_is_named(self):
        tok = load_tokenizer("wordpiece", VOCAB)
        cases = {"invalid.txt": b"\xff\xfe\xfa\n\xc3\x28\xff\n", "control.txt": b"\x01\x02\x03\n\x07 \x08\n"}
        for name, data in cases.items():
            with self.subTest(name):
                path = self.write(name, data)
                with self.assertRaisesRegex(corpus.CorpusError, f"the corpus yields no tokens: no line of {path} "):
                    corpus.check_has_tokens([path], tok)
        many = [self.write(f"many_{i}.txt", b"\x01\n") for i in range(7)]
        with self.assertRaisesRegex(corpus.CorpusError, "many_4.txt and 2 more is UTF-8"):
            corpus.check_has_tokens(many, tok)
        corpus.check_has_tokens(many + [self.write("fine.txt", "\x01\nthe\n")], tok)  # one token is enough

    def test_stats(self):
        stats = corpus.corpus_stats(CORPUS)
        expected = python_documents(CORPUS.read_text(encoding="utf-8"))
        self.assertEqual(stats.documents, len(expected))
        self.assertEqual(stats.lines, sum(len(d) for d in expected))
        self.assertEqual(stats.invalid_utf8_lines, 0)

    def test_streaming_on_shared_corpus(self):
        path = testing_utils.shared_data_path("corpora", "austen.txt.gz")
        n = corpus.document_dataset(corpus.prepare_files(str(path))).reduce(0, lambda c, d: c + 1)
        self.assertEqual(int(n), 269)  # ../shared/data/README.md


class BadInputTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.get_temp_dir()

    def test_missing_path(self):
        with self.assertRaisesRegex(corpus.CorpusError, "does not exist or matches no file"):
            corpus.prepare_files(os.path.join(self.dir, "nope.txt"))
        with self.assertRaisesRegex(corpus.CorpusError, "matches no file"):
            corpus.prepare_files(os.path.join(self.dir, "nope-*.txt.gz"))
        empty_dir = os.path.join(self.dir, "emptydir")
        os.makedirs(empty_dir)
        with self.assertRaisesRegex(corpus.CorpusError, "contains no files"):
            corpus.prepare_files(empty_dir)

    def test_empty_corpus(self):
        blank = os.path.join(self.dir, "blank.txt.gz")
        with gzip.open(blank, "wb") as f:
            f.write(b"\n \n\n")
        empty = os.path.join(self.dir, "empty.txt")
        open(empty, "w").close()
        with self.assertRaisesRegex(corpus.CorpusError, "the corpus is empty"):
            corpus.prepare_files([blank, empty])

    def test_corrupt_gzip(self):
        bad = os.path.join(self.dir, "bad.txt.gz")
        with open(bad, "wb") as f:
            f.write(b"this is not gzip data")
        with self.assertRaisesRegex(corpus.CorpusError, "cannot read corpus file"):
            corpus.prepare_files(bad)
        with self.assertRaisesRegex(corpus.CorpusError, "cannot read corpus file"):
            corpus.corpus_stats(bad)  # the trainer's count of undecodable lines reads every file

    def test_invalid_utf8_skipped_with_count_or_error(self):
        path = os.path.join(self.dir, "latin1.txt")
        with open(path, "wb") as f:
            f.write("good line\n".encode() + "caf\xe9 latin-1\n".encode("latin-1") + b"another good\n")
        stats = corpus.corpus_stats(path)
        self.assertEqual((stats.lines, stats.invalid_utf8_lines), (2, 1))
        self.assertEqual(stats.first_invalid, f"{path}:2")
        lines = [l.decode() for l in corpus.line_dataset([path]).batch(8).map(corpus.clean_lines)
                 .unbatch().map(lambda l, blank: l).as_numpy_iterator()]
        self.assertEqual(lines, ["good line", "another good", ""])
        with self.assertRaisesRegex(corpus.CorpusError, r"latin1.txt:2 is not valid UTF-8"):
            corpus.prepare_files(path, invalid_utf8="error")
        with self.assertRaisesRegex(ValueError, "invalid_utf8"):
            corpus.prepare_files(path, invalid_utf8="maybe")


class TfdsBuilderTest(tf.test.TestCase):

    def test_local_folder(self):
        folder = os.path.join(self.get_temp_dir(), "corpus")
        os.makedirs(folder)
        text = CORPUS.read_text(encoding="utf-8")
        with gzip.open(os.path.join(folder, "austen.txt.gz"), "wt", encoding="utf-8") as f:
            f.write(text)
        builder = tfds_corpus.LocalCorpus(data_dir=os.path.join(self.get_temp_dir(), "tfds"))
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=folder))
        docs = builder.as_dataset(split="train", shuffle_files=False)
        got = sorted(tuple(l.decode() for l in ex["lines"]) for ex in docs.as_numpy_iterator())
        self.assertEqual(got, sorted(tuple(d) for d in python_documents(text)))
        lines = list(tfds_corpus.document_lines(docs.take(2)).as_numpy_iterator())
        self.assertEqual(lines.count(b""), 2)

    def test_empty_folder_is_a_clear_error(self):
        folder = os.path.join(self.get_temp_dir(), "blank")
        os.makedirs(folder)
        with open(os.path.join(folder, "blank.txt"), "w") as f:
            f.write("\n\n")
        builder = tfds_corpus.LocalCorpus(data_dir=os.path.join(self.get_temp_dir(), "tfds2"))
        with self.assertRaisesRegex(corpus.CorpusError, "the corpus is empty"):
            builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=folder))


if __name__ == "__main__":
    tf.test.main()


class TrailingBlankBatchTest(tf.test.TestCase):
    def test_file_of_256_lines_tokenizes(self):
        """The file-end blank line alone in the last tokenizer batch (256 lines + 1) used to segfault."""
        path = os.path.join(self.get_temp_dir(), "lines256.txt")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(f"line number {i}" for i in range(256)) + "\n")
        from plm_tf.data import pipelines

        items = corpus.token_item_dataset(corpus.line_dataset([path]), pipelines.load_tokenizer("wordpiece"), 30)
        kinds = [int(kind) for _, kind in items.as_numpy_iterator()]
        self.assertEqual(kinds, [corpus.LINE] * 256 + [corpus.DOC_END, corpus.STREAM_END])
