"""GLUE-style task data: TSV folders (plain or gzip) and locally prepared TFDS `glue` configs.

A task folder holds `train.tsv[.gz]`, `dev.tsv[.gz]` and optionally `test.tsv[.gz]`. Each file has a header
row, one example per line, tab-separated, **no quoting** (GLUE's own files and ../shared/data/tasks: a text
may start with `"`, which default CSV quoting would treat as an opening quote and swallow the next rows):

    sentence<TAB>label                       single sentence (SST-2, CoLA-style)
    sentence1<TAB>sentence2<TAB>label        sentence pair (MNLI/RTE-style)

Other columns are ignored; the label is the column named `label` (or `label_column`). A test file without
the label column is read without labels (GLUE's hidden test sets) and is not scored.

Labels: classification unless `regression=True` or every train label is a number that is not an integer
(STS-B's 0–5 scores). The label set comes from train, sorted (numerically when every label is an integer),
and must be the label set of the evaluation splits too: a dev/test label that train never shows, or a train
label that no labelled dev/test split shows (a stray value would silently add a class), is an error rather
than a silently wrong metric. Declaring `label_names` (gin: `finetune.label_names`) fixes the label set and
its order instead; then any label outside it is the error.

`load_tfds_task("glue/sst2", data_dir)` reads a TFDS `glue` config that is already prepared in `data_dir`;
it never downloads, and says how to prepare it when it is missing.

Every problem with the data raises `TaskDataError` (a ValueError) naming the file and, where it applies, the
line.
"""
import csv
import dataclasses
import gzip
import math
import os
import random

SPLITS = ("train", "dev", "test")
SINGLE_COLUMNS = ("sentence",)
PAIR_COLUMNS = ("sentence1", "sentence2")

# TFDS glue feature names of the two texts, per config, and the splits that stand for dev / test.
_TFDS_TEXT_KEYS = (("sentence1", "sentence2"), ("question1", "question2"), ("question", "sentence"),
                   ("premise", "hypothesis"), ("sentence",))
_TFDS_SPLITS = {"train": ("train",), "dev": ("validation", "validation_matched"), "test": ("test", "test_matched")}


class TaskDataError(ValueError):
    """Task data that cannot be used as given; the message names the file, the line and the fix."""


@dataclasses.dataclass
class Split:
    """One split: parallel lists of texts and labels (None for an unlabelled test split)."""

    text_a: list
    text_b: list = None
    labels: list = None

    def __len__(self):
        return len(self.text_a)


@dataclasses.dataclass
class Task:
    """A loaded task.

    Attributes:
        name: folder name or TFDS name.
        splits: {"train": Split, "dev": Split[, "test": Split]}, labels as raw strings (TSV) or values (TFDS).
        label_names: sorted class names as strings; None for regression.
        is_pair: two texts per example.
        positive_label: class whose F1 is reported for binary tasks (None otherwise).
    """

    name: str
    splits: dict
    label_names: list
    is_pair: bool
    positive_label: str = None

    @property
    def is_regression(self):
        return self.label_names is None

    @property
    def num_classes(self):
        """Width of the classifier head (1 for regression)."""
        return 1 if self.is_regression else len(self.label_names)

    def label_ids(self, split):
        """Labels of `split` as class indices (int) or scores (float); None for an unlabelled split."""
        labels = self.splits[split].labels
        if labels is None:
            return None
        if self.is_regression:
            return [float(label) for label in labels]
        index = {name: i for i, name in enumerate(self.label_names)}
        return [index[str(label)] for label in labels]

    def majority_class(self):
        """The most frequent train class index (ties: the lowest index); None for regression."""
        if self.is_regression:
            return None
        ids = self.label_ids("train")
        counts = [ids.count(i) for i in range(self.num_classes)]
        return counts.index(max(counts))

    def subsample_train(self, max_examples, seed=0):
        """Keeps a seeded random subset of at most `max_examples` train examples (order shuffled).

        Raises:
            TaskDataError: `max_examples` is below 1 (None keeps every example).
        """
        if max_examples is not None and max_examples < 1:
            raise TaskDataError(
                f"finetune.max_train_examples must be at least 1 (or None for the whole train split); got {max_examples}.")
        train = self.splits["train"]
        if max_examples is None or max_examples >= len(train):
            return
        order = list(range(len(train)))
        random.Random(seed).shuffle(order)
        keep = sorted(order[:max_examples])
        self.splits["train"] = Split(
            [train.text_a[i] for i in keep],
            None if train.text_b is None else [train.text_b[i] for i in keep],
            None if train.labels is None else [train.labels[i] for i in keep],
        )


def _split_path(task_dir, split):
    for name in (f"{split}.tsv", f"{split}.tsv.gz"):
        path = os.path.join(task_dir, name)
        if os.path.exists(path):
            return path
    return None


def read_tsv(path):
    """(header, rows) of a headed, tab-separated, unquoted file (plain or gzip); TaskDataError if empty."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise TaskDataError(f"{path}: cannot be read as UTF-8 TSV ({error}).") from None
    rows = [row for row in rows if row != []]  # a trailing newline or blank lines are not examples
    if not rows:
        raise TaskDataError(f"{path} is empty: expected a header row and at least one example.")
    header, body = rows[0], rows[1:]
    if not body:
        raise TaskDataError(f"{path} has a header ({', '.join(header)}) but no examples.")
    return header, body


def _text_columns(header, path, text_columns):
    if text_columns is not None:
        missing = [c for c in text_columns if c not in header]
        if missing:
            raise TaskDataError(f"{path}: column(s) {missing} not in header {header}.")
        return tuple(text_columns)
    if all(c in header for c in PAIR_COLUMNS):
        return PAIR_COLUMNS
    if SINGLE_COLUMNS[0] in header:
        return SINGLE_COLUMNS
    raise TaskDataError(
        f"{path}: header {header} has neither a 'sentence' column nor 'sentence1' and 'sentence2' "
        "(GLUE-style TSV; or pass text_columns).")


def _read_split(path, split, text_columns, label_column):
    header, body = read_tsv(path)
    columns = _text_columns(header, path, text_columns)
    has_label = label_column in header
    if not has_label and split != "test":
        raise TaskDataError(f"{path}: no '{label_column}' column in header {header}.")
    indices = [header.index(c) for c in columns]
    label_index = header.index(label_column) if has_label else None
    texts = [[] for _ in columns]
    labels = [] if has_label else None
    for line_number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise TaskDataError(
                f"{path}:{line_number}: {len(row)} fields, the header has {len(header)} "
                "(fields are tab-separated and must not contain tabs or line breaks).")
        for values, index in zip(texts, indices):
            values.append(row[index])
        if has_label:
            label = row[label_index].strip()
            if not label:
                raise TaskDataError(f"{path}:{line_number}: empty label.")
            labels.append(label)
    return columns, Split(texts[0], texts[1] if len(texts) == 2 else None, labels)


def _is_number(text):
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _is_integer(text):
    try:
        int(text)
        return True
    except ValueError:
        return False


def _label_names(labels, path):
    names = sorted(set(labels))
    if all(_is_integer(n) for n in names):
        names.sort(key=int)
    if len(names) < 2:
        raise TaskDataError(f"{path}: every train label is {names[0]!r}; classification needs at least two classes.")
    return names


def _declared_label_names(label_names, splits, paths):
    names = [str(name) for name in label_names]
    if len(set(names)) != len(names) or len(names) < 2:
        raise TaskDataError(f"finetune.label_names = {list(label_names)} must name at least two distinct classes.")
    for split, data in splits.items():
        if data.labels is not None:
            unknown = sorted(set(str(label) for label in data.labels) - set(names))
            if unknown:
                raise TaskDataError(f"{paths[split]}: label(s) {unknown} are not in finetune.label_names {names}.")
    return names


def _checked_label_names(splits, paths):
    """The sorted train labels, after checking that train and the labelled dev/test splits share them."""
    label_names = _label_names([str(label) for label in splits["train"].labels], paths["train"])
    known = set(label_names)
    evaluated = {split: set(str(label) for label in data.labels)
                 for split, data in splits.items() if split != "train" and data.labels is not None}
    for split, labels in evaluated.items():
        unseen = sorted(labels - known)
        if unseen:
            raise TaskDataError(
                f"{paths[split]}: label(s) {unseen} never occur in train (train labels: {label_names}); "
                "a model cannot predict a class it never saw. If that is intended, declare every class with "
                "finetune.label_names = [...].")
    train_only = sorted(known - set().union(*evaluated.values()), key=label_names.index)
    if train_only:
        raise TaskDataError(
            f"{paths['train']}: label(s) {train_only} occur only in train, never in "
            f"{' or '.join(paths[split] for split in evaluated)}; a stray label would silently add a class. "
            f"Fix the data, or declare the classes (and their order) with finetune.label_names = {label_names}.")
    return label_names


def _finish(name, splits, paths, is_pair, regression, positive_label, label_names=None):
    """Chooses classification or regression and checks every labelled split against the label set."""
    train_labels = [str(label) for label in splits["train"].labels]
    if label_names is not None:
        if regression:
            raise TaskDataError("finetune.label_names declares classes, but the task is set to regression.")
        regression = False
    if regression is None:
        regression = all(_is_number(v) for v in train_labels) and not all(_is_integer(v) for v in train_labels)
    if regression:
        for split, data in splits.items():
            if data.labels is None:
                continue
            for i, label in enumerate(data.labels):
                if not _is_number(str(label)):
                    raise TaskDataError(f"{paths[split]}: label {label!r} of example {i} is not a number "
                                        "(this task is read as regression).")
        return Task(name, splits, None, is_pair)
    if label_names is not None:
        label_names = _declared_label_names(label_names, splits, paths)
    else:
        label_names = _checked_label_names(splits, paths)
    known = set(label_names)
    if len(label_names) == 2:
        if positive_label is None:
            positive_label = "1" if "1" in known else label_names[1]
        elif str(positive_label) not in known:
            raise TaskDataError(f"positive_label {positive_label!r} is not a train label ({label_names}).")
        positive_label = str(positive_label)
    else:
        positive_label = None
    for data in splits.values():
        if data.labels is not None:
            data.labels = [str(label) for label in data.labels]
    return Task(name, splits, label_names, is_pair, positive_label)


def load_tsv_task(task_dir, text_columns=None, label_column="label", regression=None, positive_label=None,
                  label_names=None):
    """Reads a GLUE-style task folder.

    Args:
        task_dir: folder with train and dev (and optionally test) `.tsv` / `.tsv.gz` files.
        text_columns: the one or two text columns; None finds `sentence1`/`sentence2`, else `sentence`.
        label_column: name of the label column.
        regression: True/False forces the task type; None infers it from the train labels.
        positive_label: class scored by binary F1; None means "1" when that is a label, else the second
            sorted label.
        label_names: the classes, in the order of the classifier's outputs; None = the train labels, sorted,
            which dev (and a labelled test) must show exactly.

    Raises:
        TaskDataError: missing folder or split, empty file, wrong columns, ragged rows, or a label set that
            differs between train and dev/test (or lies outside `label_names`).
    """
    if not os.path.isdir(task_dir):
        raise TaskDataError(f"task folder {task_dir} does not exist.")
    paths = {split: _split_path(task_dir, split) for split in SPLITS}
    for split in ("train", "dev"):
        if paths[split] is None:
            raise TaskDataError(f"{task_dir} has no {split}.tsv or {split}.tsv.gz.")
    paths = {split: path for split, path in paths.items() if path is not None}
    splits, columns = {}, None
    for split, path in paths.items():
        split_columns, splits[split] = _read_split(path, split, text_columns, label_column)
        if columns is not None and split_columns != columns:
            raise TaskDataError(f"{path}: text columns {list(split_columns)} differ from train's {list(columns)}.")
        columns = split_columns
    name = os.path.basename(os.path.normpath(task_dir))
    return _finish(name, splits, paths, len(columns) == 2, regression, positive_label, label_names)


def load_tfds_task(name, data_dir=None, regression=None, positive_label=None, label_names=None):
    """Reads a TFDS `glue/<config>` that is already prepared in `data_dir`; never downloads.

    Splits: train; dev = `validation` (MNLI: `validation_matched`); test = `test` (`test_matched`) when its
    labels are present (GLUE test labels are -1, so the test split is left out).
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises its own DatasetNotFoundError / ValueError types
        raise TaskDataError(f"TFDS dataset {name!r} is unknown to tensorflow_datasets: {error}") from None
    if not builder.is_prepared():
        raise TaskDataError(
            f"TFDS dataset {name!r} is not prepared under {builder.data_dir!r} and plm_tf never downloads. "
            f"Prepare it once yourself (tfds.builder({name!r}, data_dir=...).download_and_prepare()) and pass "
            "that data_dir, or use a TSV task folder.")
    features = builder.info.features
    keys = next((k for k in _TFDS_TEXT_KEYS if all(key in features for key in k)), None)
    if keys is None:
        raise TaskDataError(f"TFDS dataset {name!r} has none of the known GLUE text features {_TFDS_TEXT_KEYS}.")
    label_feature = features["label"]
    class_names = getattr(label_feature, "names", None)
    splits, paths = {}, {}
    for split, candidates in _TFDS_SPLITS.items():
        tfds_split = next((c for c in candidates if c in builder.info.splits), None)
        if tfds_split is None:
            if split != "test":
                raise TaskDataError(f"TFDS dataset {name!r} has no {'/'.join(candidates)} split.")
            continue
        texts = [[] for _ in keys]
        labels = []
        for example in tfds.as_numpy(builder.as_dataset(split=tfds_split)):
            for values, key in zip(texts, keys):
                values.append(example[key].decode("utf-8"))
            label = example["label"]
            labels.append(class_names[int(label)] if class_names and int(label) >= 0 else
                          (None if class_names else float(label)))
        if not labels:
            raise TaskDataError(f"TFDS dataset {name!r} split {tfds_split!r} is empty.")
        if any(label is None for label in labels):
            if split != "test":
                raise TaskDataError(f"TFDS dataset {name!r} split {tfds_split!r} has unlabelled examples.")
            continue  # GLUE's hidden test labels (-1)
        splits[split] = Split(texts[0], texts[1] if len(keys) == 2 else None, labels)
        paths[split] = f"{name}[{tfds_split}]"
    if regression is None:
        regression = class_names is None
    return _finish(name, splits, paths, len(keys) == 2, regression, positive_label, label_names)


TFDS_PREFIX = "tfds:"


def load_task(task, tfds_data_dir=None, **kwargs):
    """`load_tsv_task(task)` for a folder, `load_tfds_task(name)` for "tfds:glue/<config>"."""
    if task.startswith(TFDS_PREFIX):
        tsv_only = {k: v for k, v in kwargs.items()
                    if (k == "text_columns" and v is not None) or (k == "label_column" and v != "label")}
        if tsv_only:
            raise TaskDataError(f"{sorted(tsv_only)} apply to TSV folders, not to {task} (TFDS glue features "
                                "are named by the dataset).")
        return load_tfds_task(task[len(TFDS_PREFIX):], data_dir=tfds_data_dir,
                              **{k: v for k, v in kwargs.items() if k in ("regression", "positive_label", "label_names")})
    if tfds_data_dir is not None:
        raise TaskDataError(f"tfds_data_dir only applies to tfds:glue/... tasks, not to the folder {task}.")
    return load_tsv_task(task, **kwargs)
