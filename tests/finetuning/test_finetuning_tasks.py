"""GLUE-style task reading: formats, label sets, task types, and one clear error for each kind of bad input."""
import gzip
import os
import pathlib
import tempfile

import tensorflow as tf
import tensorflow_datasets as tfds

from plm_tf.finetuning import tasks
from plm_tf.finetuning.tasks import TaskDataError
from testing_utils import shared_data_path

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def _tmpdir(test):
    """A fresh folder per call (tf.test's get_temp_dir is shared by a test's calls)."""
    return tempfile.mkdtemp(dir=test.get_temp_dir())


def _write(folder, name, text, compress=False):
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


class TsvTaskTest(tf.test.TestCase):

    def test_single_sentence_with_leading_quotes(self):
        task = tasks.load_tsv_task(str(FIXTURES / "single"))
        self.assertFalse(task.is_pair)
        self.assertFalse(task.is_regression)
        self.assertEqual(task.label_names, ["0", "1"])
        self.assertEqual(task.positive_label, "1")
        # 64 data rows; every 7th starts with '"', which default CSV quoting would merge with following rows.
        self.assertLen(task.splits["train"], 64)
        self.assertEqual(task.splits["train"].text_a[0], '"the ball was charming indeed , she said')
        self.assertEqual(task.label_ids("train")[0], 1)
        self.assertEqual(set(task.splits), {"train", "dev", "test"})
        self.assertIsNone(task.splits["train"].text_b)

    def test_gzip_pairs_three_labels(self):
        task = tasks.load_tsv_task(str(FIXTURES / "pairs"))
        self.assertTrue(task.is_pair)
        self.assertEqual(task.label_names, ["False", "Neither", "True"])
        self.assertIsNone(task.positive_label)
        self.assertEqual(task.num_classes, 3)
        self.assertLen(task.splits["dev"].text_b, 16)
        ids = task.label_ids("dev")
        self.assertEqual([task.label_names[i] for i in ids], task.splits["dev"].labels)

    def test_float_labels_are_regression_and_extra_columns_ignored(self):
        task = tasks.load_tsv_task(str(FIXTURES / "regression"))
        self.assertTrue(task.is_regression)
        self.assertEqual(task.num_classes, 1)
        self.assertEqual(task.splits["train"].text_a[0], "charming horrid tiresome")
        self.assertAlmostEqual(task.label_ids("train")[0], 1.25)
        self.assertNotIn("test", task.splits)

    def test_regression_flag_and_integer_labels(self):
        folder = _tmpdir(self)
        _write(folder, "train.tsv", "sentence\tlabel\na\t1\nb\t3\nc\t2\nd\t10\n")
        _write(folder, "dev.tsv", "sentence\tlabel\na\t2\nb\t10\nc\t1\nd\t3\n")
        task = tasks.load_tsv_task(folder)
        self.assertEqual(task.label_names, ["1", "2", "3", "10"])  # numeric order, not string order
        self.assertIsNone(task.positive_label)
        self.assertEqual(task.majority_class(), 0)
        self.assertTrue(tasks.load_tsv_task(folder, regression=True).is_regression)

    def test_unlabelled_test_split_and_subsample(self):
        folder = _tmpdir(self)
        rows = "".join(f"text {i}\t{i % 2}\n" for i in range(20))
        _write(folder, "train.tsv", "sentence\tlabel\n" + rows)
        _write(folder, "dev.tsv", "sentence\tlabel\nx\t0\ny\t1\n")
        _write(folder, "test.tsv", "index\tsentence\n0\tx\n")
        task = tasks.load_tsv_task(folder)
        self.assertIsNone(task.label_ids("test"))
        task.subsample_train(5, seed=3)
        self.assertLen(task.splits["train"], 5)
        again = tasks.load_tsv_task(folder)
        again.subsample_train(5, seed=3)
        self.assertEqual(task.splits["train"].text_a, again.splits["train"].text_a)
        again.subsample_train(None)
        self.assertLen(again.splits["train"], 5)
        for bad in (0, -3):
            with self.assertRaisesRegex(TaskDataError, f"max_train_examples must be at least 1 .*; got {bad}"):
                again.subsample_train(bad)

    def test_positive_label_option(self):
        task = tasks.load_tsv_task(str(FIXTURES / "single"), positive_label="0")
        self.assertEqual(task.positive_label, "0")
        with self.assertRaisesRegex(TaskDataError, "positive_label 'spam'"):
            tasks.load_tsv_task(str(FIXTURES / "single"), positive_label="spam")

    def test_text_columns_option(self):
        folder = _tmpdir(self)
        _write(folder, "train.tsv", "question\tanswer\tlabel\nq1\ta1\tyes\nq2\ta2\tno\n")
        _write(folder, "dev.tsv", "question\tanswer\tlabel\nq3\ta3\tyes\nq4\ta4\tno\n")
        task = tasks.load_tsv_task(folder, text_columns=("question", "answer"))
        self.assertTrue(task.is_pair)
        self.assertEqual(task.splits["dev"].text_b, ["a3", "a4"])
        self.assertEqual(task.positive_label, "yes")


class BadInputTest(tf.test.TestCase):
    """Each problem raises TaskDataError (a ValueError) naming the file."""

    def _task(self, train, dev="sentence\tlabel\nfine\t0\n", compress=False):
        folder = _tmpdir(self)
        ext = ".tsv.gz" if compress else ".tsv"
        _write(folder, "train" + ext, train, compress)
        if dev is not None:
            _write(folder, "dev" + ext, dev, compress)
        return folder

    def test_wrong_columns(self):
        folder = self._task("text\tlabel\na\t0\nb\t1\n")
        with self.assertRaisesRegex(TaskDataError, r"train\.tsv: header \['text', 'label'\] has neither"):
            tasks.load_tsv_task(folder)

    def test_missing_label_column(self):
        folder = self._task("sentence\tclass\na\t0\nb\t1\n")
        with self.assertRaisesRegex(TaskDataError, "no 'label' column"):
            tasks.load_tsv_task(folder)

    def test_label_outside_train_label_set(self):
        folder = self._task("sentence\tlabel\na\t0\nb\t1\n", dev="sentence\tlabel\nc\t2\nd\t0\n")
        with self.assertRaisesRegex(TaskDataError, r"dev\.tsv: label\(s\) \['2'\] never occur in train"):
            tasks.load_tsv_task(folder)

    def test_label_only_in_train_unless_declared(self):
        # A stray train label ("1 " typed as "l") would silently make a 3-class task.
        folder = self._task("sentence\tlabel\na\t0\nb\t1\nc\tl\n", dev="sentence\tlabel\nc\t1\nd\t0\n")
        with self.assertRaisesRegex(TaskDataError, r"train\.tsv: label\(s\) \['l'\] occur only in train, never in "
                                                   r".*dev\.tsv.*finetune\.label_names = \['0', '1', 'l'\]"):
            tasks.load_tsv_task(folder)
        # Declared, the label set and its order are the declaration's, whatever the splits show.
        task = tasks.load_tsv_task(folder, label_names=["l", "1", "0", "2"])
        self.assertEqual(task.label_names, ["l", "1", "0", "2"])
        self.assertEqual(task.num_classes, 4)
        self.assertEqual(task.label_ids("train"), [2, 1, 0])
        self.assertEqual(task.label_ids("dev"), [1, 2])
        self.assertIsNone(task.positive_label)
        with self.assertRaisesRegex(TaskDataError, r"train\.tsv: label\(s\) \['l'\] are not in finetune\.label_names"):
            tasks.load_tsv_task(folder, label_names=["0", "1"])
        with self.assertRaisesRegex(TaskDataError, "at least two distinct classes"):
            tasks.load_tsv_task(folder, label_names=["0", "0", "l"])
        with self.assertRaisesRegex(TaskDataError, "task is set to regression"):
            tasks.load_tsv_task(folder, label_names=["0", "1", "l"], regression=True)

    def test_declared_binary_labels_keep_their_order(self):
        folder = self._task("sentence\tlabel\na\tspam\nb\tham\n", dev="sentence\tlabel\nc\tham\n")
        task = tasks.load_tsv_task(folder, label_names=["spam", "ham"])
        self.assertEqual(task.label_ids("train"), [0, 1])
        self.assertEqual(task.positive_label, "ham")  # the second declared class, as for sorted labels

    def test_test_label_outside_train_label_set(self):
        folder = self._task("sentence\tlabel\na\tTrue\nb\tFalse\n", dev="sentence\tlabel\nc\tTrue\n")
        _write(folder, "test.tsv", "sentence\tlabel\nd\tNeither\n")
        with self.assertRaisesRegex(TaskDataError, r"test\.tsv: label\(s\) \['Neither'\]"):
            tasks.load_tsv_task(folder)

    def test_empty_file(self):
        folder = self._task("", compress=True)
        with self.assertRaisesRegex(TaskDataError, r"train\.tsv\.gz is empty"):
            tasks.load_tsv_task(folder)

    def test_header_only(self):
        folder = self._task("sentence\tlabel\na\t0\nb\t1\n", dev="sentence\tlabel\n")
        with self.assertRaisesRegex(TaskDataError, r"dev\.tsv has a header \(sentence, label\) but no examples"):
            tasks.load_tsv_task(folder)

    def test_ragged_row(self):
        folder = self._task("sentence\tlabel\na\t0\nb\textra\t1\n")
        with self.assertRaisesRegex(TaskDataError, r"train\.tsv:3: 3 fields, the header has 2"):
            tasks.load_tsv_task(folder)

    def test_single_class(self):
        folder = self._task("sentence\tlabel\na\t0\nb\t0\n")
        with self.assertRaisesRegex(TaskDataError, "at least two classes"):
            tasks.load_tsv_task(folder)

    def test_missing_split_and_folder(self):
        folder = self._task("sentence\tlabel\na\t0\nb\t1\n", dev=None)
        with self.assertRaisesRegex(TaskDataError, "has no dev.tsv or dev.tsv.gz"):
            tasks.load_tsv_task(folder)
        with self.assertRaisesRegex(TaskDataError, "does not exist"):
            tasks.load_tsv_task(os.path.join(folder, "nope"))

    def test_non_numeric_regression_label(self):
        folder = self._task("sentence\tlabel\na\t0.5\nb\t1.5\n", dev="sentence\tlabel\nc\thigh\n")
        with self.assertRaisesRegex(TaskDataError, "'high' of example 0 is not a number"):
            tasks.load_tsv_task(folder)

    def test_not_utf8(self):
        folder = _tmpdir(self)
        (pathlib.Path(folder) / "train.tsv").write_bytes(b"sentence\tlabel\n\xff\xfe\t0\n")
        _write(folder, "dev.tsv", "sentence\tlabel\na\t0\n")
        with self.assertRaisesRegex(TaskDataError, "cannot be read as UTF-8"):
            tasks.load_tsv_task(folder)


class TfdsTest(tf.test.TestCase):

    def test_unprepared_glue_is_a_clear_error_without_download(self):
        data_dir = _tmpdir(self)
        with self.assertRaisesRegex(TaskDataError, "not prepared .* plm_tf never downloads"):
            tasks.load_task("tfds:glue/sst2", tfds_data_dir=data_dir)
        self.assertEmpty(os.listdir(data_dir))

    def test_tsv_options_are_not_silently_ignored(self):
        with self.assertRaisesRegex(TaskDataError, r"\['text_columns'\] apply to TSV folders"):
            tasks.load_task("tfds:glue/sst2", tfds_data_dir=_tmpdir(self), text_columns=("a",))
        with self.assertRaisesRegex(TaskDataError, "tfds_data_dir only applies"):
            tasks.load_task(str(FIXTURES / "single"), tfds_data_dir=_tmpdir(self))

    def test_unknown_tfds_name(self):
        with self.assertRaisesRegex(TaskDataError, "unknown to tensorflow_datasets"):
            tasks.load_task("tfds:no_such_dataset_xyz", tfds_data_dir=_tmpdir(self))

    def test_prepared_dataset_is_read(self):
        """A locally prepared dataset with GLUE's feature layout (MRPC-like; test labels -1 as in GLUE)."""
        data_dir = _tmpdir(self)
        _FakeGluePairs(data_dir=data_dir).download_and_prepare()
        task = tasks.load_task("tfds:fake_glue_pairs", tfds_data_dir=data_dir)
        self.assertTrue(task.is_pair)
        self.assertEqual(task.label_names, ["equivalent", "not_equivalent"])
        self.assertEqual(task.positive_label, "not_equivalent")  # "1" is not a name: the second sorted label
        self.assertLen(task.splits["train"], 6)
        self.assertEqual(sorted(task.splits["dev"].text_a), ["a0", "a1"])
        self.assertNotIn("test", task.splits)  # hidden test labels
        train = task.splits["train"]
        self.assertEqual({(a, label) for a, label in zip(train.text_a, train.labels)},
                         {(f"a{i}", ["not_equivalent", "equivalent"][i % 2]) for i in range(6)})


class _FakeGluePairs(tfds.core.GeneratorBasedBuilder):
    """GLUE's MRPC feature layout, generated locally (nothing is downloaded)."""

    VERSION = tfds.core.Version("1.0.0")
    name = "fake_glue_pairs"
    pkg_dir_path = FIXTURES  # no metadata files: this test module is not inside a package

    def _info(self):
        return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
            "sentence1": tfds.features.Text(), "sentence2": tfds.features.Text(), "idx": tf.int32,
            "label": tfds.features.ClassLabel(names=["not_equivalent", "equivalent"])}))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(6, labelled=True),
                "validation": self._generate_examples(2, labelled=True),
                "test": self._generate_examples(2, labelled=False)}

    def _generate_examples(self, count, labelled):
        for i in range(count):
            yield i, {"sentence1": f"a{i}", "sentence2": f"b{i}", "idx": i, "label": i % 2 if labelled else -1}


class SharedDataTest(tf.test.TestCase):
    """The real tasks under ../shared/data (skipped when absent)."""

    def test_spam(self):
        task = tasks.load_tsv_task(str(shared_data_path("tasks", "spam")))
        self.assertEqual([len(task.splits[s]) for s in ("train", "dev", "test")], [4474, 559, 560])
        self.assertEqual(task.label_ids("train").count(1), 1208)
        self.assertEqual(task.positive_label, "1")

    def test_entailment(self):
        task = tasks.load_tsv_task(str(shared_data_path("tasks", "entailment")))
        self.assertTrue(task.is_pair)
        self.assertEqual([len(task.splits[s]) for s in ("train", "dev", "test")], [44210, 5014, 5444])
        self.assertEqual(task.label_names, ["False", "Neither", "True"])
        self.assertEqual(task.label_ids("dev").count(2), 2493)


if __name__ == "__main__":
    tf.test.main()
