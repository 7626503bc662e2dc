"""TFDS builder for a local pretraining corpus folder (standard format, see `corpus`); never downloads.

The corpus files are read from the manual directory (`tfds.download.DownloadConfig(manual_dir=...)`):

    builder = LocalCorpus(data_dir="/tmp/tfds")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir="/path/to/corpus"))
    docs = builder.as_dataset(split="train")          # {"lines": tf.string [num_lines]} per document
    lines = document_lines(docs)                       # line stream for corpus.token_item_dataset

Every file of the folder (plain or .gz, sorted by name) is read line by line in Python at preparation time;
one example per non-empty document, keyed "<file name>:<document index>". Undecodable lines are skipped (as
the tf.data reader does) and counted in the builder's `skipped_lines`.
"""
import os

import tensorflow as tf
import tensorflow_datasets as tfds

from plm_tf.data import corpus


class LocalCorpus(tfds.core.GeneratorBasedBuilder):
    """A folder of standard-format text files as a TFDS dataset of documents (one split, "train")."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Documents of a local corpus folder."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Pass the corpus folder as the manual directory: "
        "download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=FOLDER)). "
        "Files: one sentence or paragraph per line, an empty line between documents, plain or .gz.")

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({"lines": tfds.features.Sequence(tfds.features.Text())}),
            description="Documents of a local pretraining corpus (standard BERT/ELECTRA text format).")

    def _split_generators(self, dl_manager):
        folder = os.fspath(dl_manager.manual_dir)
        try:
            files = corpus.resolve_paths(folder)
            corpus.check_not_empty(files)
        except corpus.CorpusError as e:
            raise corpus.CorpusError(f"LocalCorpus manual_dir: {e}") from None
        return {"train": self._generate_examples(files)}

    def _generate_examples(self, files):
        self.skipped_lines = 0
        for path in files:
            name = os.path.basename(path)
            doc, index = [], 0
            with corpus._open(path) as f:
                for raw in f:
                    try:
                        line = raw.decode("utf-8").strip()
                    except UnicodeDecodeError:
                        self.skipped_lines += 1
                        continue
                    if line:
                        doc.append(line)
                    elif doc:
                        yield f"{name}:{index}", {"lines": doc}
                        doc, index = [], index + 1
            if doc:
                yield f"{name}:{index}", {"lines": doc}


def document_lines(documents):
    """Dataset of {"lines": tf.string [n]} documents -> tf.string line stream, an "" after each document
    (the input `corpus.token_item_dataset` expects)."""
    return documents.flat_map(lambda ex: tf.data.Dataset.from_tensor_slices(
        tf.concat([ex["lines"], tf.constant([""])], 0)))
