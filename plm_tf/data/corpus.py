"""Reading pretraining corpora in the standard format, streaming, inside tf.data.

Format (google-research/bert and electra `create_pretraining_data`): UTF-8 text, one sentence or paragraph per
line, an empty line between documents. Files may be plain or gzip (chosen by a `.gz` suffix); the end of each
file also ends a document. Paths may be files, directories (every file inside, sorted) or glob patterns.

Design: a corpus is a stream of *lines* (`line_dataset`) — nothing is ever held beyond one batch of lines, so
memory does not grow with corpus size. Tokenized, it becomes a stream of *items* (`token_item_dataset`):
`(ids int32 [n], kind int32 [])` with kind `LINE`, `DOC_END` (empty ids) or `STREAM_END` (one final item that
flushes the example builders). `document_dataset` groups lines into documents (a string [num_lines] per
document) for callers that want whole documents.

Bad input, checked in Python before any graph runs (`CorpusError`, a `ValueError`):
  * a path or pattern that matches nothing; a directory without files;
  * a corpus without a single non-blank line (reading stops at the first one found, so the check is cheap);
  * lines that are not valid UTF-8: by default (`invalid_utf8="skip"`) they are dropped inside the graph and
    `corpus_stats` reports how many there are; `invalid_utf8="error"` scans the files first and raises
    `CorpusError` naming the first bad file and line.
A line longer than the model's maximum is split into consecutive chunks of at most `max_line_tokens` tokens
(`token_item_dataset`); each chunk is then treated as a line, so no text is silently lost.
"""
import dataclasses
import gzip
import os

import tensorflow as tf

LINE, DOC_END, STREAM_END = 0, 1, 2


class CorpusError(ValueError):
    """A corpus path or its content cannot be used; raised before the graph runs."""


def _open(path):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def resolve_paths(paths):
    """Expands files, directories and glob patterns to a sorted list of files; raises CorpusError if none."""
    if paths is None:
        raise CorpusError("no corpus path given")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = []
    for p in paths:
        p = os.fspath(p)
        if tf.io.gfile.isdir(p):
            found = sorted(os.path.join(p, f) for f in tf.io.gfile.listdir(p)
                           if not tf.io.gfile.isdir(os.path.join(p, f)) and not f.startswith("."))
            if not found:
                raise CorpusError(f"corpus directory {p!r} contains no files")
        else:
            found = sorted(tf.io.gfile.glob(p))
            if not found:
                raise CorpusError(f"corpus path {p!r} does not exist or matches no file")
        files.extend(found)
    return files


def check_not_empty(files):
    """Raises CorpusError unless some file has a non-blank line (stops reading at the first one)."""
    for path in files:
        try:
            with _open(path) as f:
                for line in f:
                    if line.strip():
                        return
        except (OSError, EOFError) as e:
            raise CorpusError(f"cannot read corpus file {path!r}: {e}") from e
    raise CorpusError(f"the corpus is empty: no non-blank line in {files}")


@dataclasses.dataclass
class CorpusStats:
    """Counts from one pass over a corpus (`corpus_stats`)."""
    files: int = 0
    lines: int = 0
    documents: int = 0
    invalid_utf8_lines: int = 0
    first_invalid: str = ""


def corpus_stats(paths, raise_on_invalid=False):
    """One streaming Python pass: counts lines, documents and undecodable lines.

    Args:
      paths: files, directories or glob patterns.
      raise_on_invalid: raise CorpusError at the first line that is not UTF-8.
    Returns:
      CorpusStats. Non-blank lines only are counted in `lines`; `documents` counts non-empty documents.
    """
    files = resolve_paths(paths)
    stats = CorpusStats(files=len(files))
    for path in files:
        in_doc = False
        with _open(path) as f:
            for number, raw in enumerate(f, 1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    stats.invalid_utf8_lines += 1
                    where = f"{path}:{number}"
                    stats.first_invalid = stats.first_invalid or where
                    if raise_on_invalid:
                        raise CorpusError(f"{where} is not valid UTF-8 ({e.reason} at byte {e.start})") from e
                    continue
                if text.strip():
                    stats.lines += 1
                    if not in_doc:
                        stats.documents += 1
                    in_doc = True
                else:
                    in_doc = False
    return stats


def prepare_files(paths, invalid_utf8="skip"):
    """Resolves and checks `paths` (module docstring); returns the list of files."""
    if invalid_utf8 not in ("skip", "error"):
        raise ValueError(f"invalid_utf8 must be 'skip' or 'error', got {invalid_utf8!r}")
    files = resolve_paths(paths)
    check_not_empty(files)
    if invalid_utf8 == "error":
        corpus_stats(files, raise_on_invalid=True)
    return files


def _file_lines(path, compression):
    """Lines of one file followed by one empty line (end of file = end of document)."""
    return tf.data.TextLineDataset(path, compression_type=compression).concatenate(
        tf.data.Dataset.from_tensors(tf.constant("")))


def line_dataset(files, shuffle_seed=None):
    """tf.string [] lines of `files` in order (or in a seeded shuffled file order), an "" after each file.

    Args:
      files: list of file paths (see `prepare_files`).
      shuffle_seed: None, or an int64 scalar (tensor allowed) that shuffles the file order.
    """
    if not files:
        raise CorpusError("no corpus files")
    comp = ["GZIP" if f.endswith(".gz") else "" for f in files]
    files, comp = tf.constant(list(files)), tf.constant(comp)
    if shuffle_seed is not None and files.shape[0] > 1:
        # A stateless permutation: `Dataset.shuffle` cannot take the seed as a tensor, and the seed is one
        # when the epoch comes from `Dataset.range(...).flat_map`.
        seed = tf.stack([tf.cast(shuffle_seed, tf.int64), tf.constant(0, tf.int64)])
        order = tf.argsort(tf.random.stateless_uniform([files.shape[0]], seed=seed))
        files, comp = tf.gather(files, order), tf.gather(comp, order)
    return tf.data.Dataset.from_tensor_slices((files, comp)).flat_map(_file_lines)


def _valid_utf8(lines):
    cleaned = tf.strings.unicode_transcode(lines, "UTF-8", "UTF-8", errors="ignore")
    return tf.equal(tf.strings.length(cleaned), tf.strings.length(lines))


def clean_lines(lines):
    """Batch op: tf.string [N] -> (stripped lines [M], is_blank bool [M]) without the undecodable lines."""
    lines = tf.strings.strip(lines)
    lines = tf.boolean_mask(lines, _valid_utf8(lines))
    return lines, tf.equal(tf.strings.length(lines), 0)


def split_long_rows(ids, max_len):
    """Splits each row of a ragged [N, None] into rows of at most `max_len` values (empty rows stay).

    Returns (ragged [M, None], source row index int32 [M]).
    """
    n = tf.cast(ids.row_lengths(), tf.int32)
    chunks = tf.maximum(1, (n + max_len - 1) // max_len)
    source = tf.repeat(tf.range(tf.size(n)), chunks)
    first = tf.repeat(tf.cumsum(chunks, exclusive=True), chunks)
    j = tf.range(tf.reduce_sum(chunks)) - first
    lengths = tf.clip_by_value(tf.gather(n, source) - j * max_len, 0, max_len)
    return tf.RaggedTensor.from_row_lengths(ids.flat_values, tf.cast(lengths, tf.int64)), source


def token_item_dataset(lines, tokenizer, max_line_tokens, batch_lines=256):
    """Tokenizes a line stream into items `(ids int32 [n], kind int32 [])`, ending with one STREAM_END item.

    Blank lines become DOC_END items; a line of more than `max_line_tokens` tokens becomes several LINE items
    (its consecutive chunks); a non-blank line with no tokens is dropped. Lines are tokenized in batches of
    `batch_lines` (one tokenizer call per batch), then unbatched, so only one batch is ever in memory.
    """
    def tokenize(batch):
        text, blank = clean_lines(batch)
        ids = tf.cast(tokenizer.tokenize(text), tf.int32)
        ids, src = split_long_rows(ids, max_line_tokens)
        kind = tf.where(tf.gather(blank, src), DOC_END, LINE)
        keep = tf.equal(kind, DOC_END) | (ids.row_lengths() > 0)
        ids = tf.ragged.boolean_mask(ids, keep)
        # A fixed width: a batch of blank lines only would otherwise give a [N, 0] tensor, and unbatching that
        # segfaults TensorFlow 2.21 (a file of 256·k lines ends with such a batch).
        return (ids.to_tensor(shape=[None, max_line_tokens]), tf.cast(ids.row_lengths(), tf.int32),
                tf.boolean_mask(kind, keep))

    items = lines.batch(batch_lines).map(tokenize).unbatch().map(lambda ids, n, kind: (ids[:n], kind))
    end = tf.data.Dataset.from_tensors((tf.zeros([0], tf.int32), tf.constant(STREAM_END)))
    return items.concatenate(end)


def document_dataset(files):
    """Documents of `files`: a dataset of tf.string [num_lines] (the lines of one non-empty document).

    Streaming: the scan state holds the current document's lines only.
    """
    lines = line_dataset(files).batch(1024).map(clean_lines).unbatch()
    lines = lines.concatenate(tf.data.Dataset.from_tensors((tf.constant(""), tf.constant(True))))

    def step(doc, item):
        line, blank = item
        out = (doc, blank & (tf.size(doc) > 0))
        new = tf.cond(blank, lambda: tf.zeros([0], tf.string), lambda: tf.concat([doc, [line]], 0))
        return new, out

    docs = lines.scan(tf.zeros([0], tf.string), step)
    return docs.filter(lambda doc, done: done).map(lambda doc, done: doc)
