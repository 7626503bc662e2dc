"""Byte-level BPE (GPT-2 / RoBERTa) built from TensorFlow ops; reads GPT-2 `vocab.json` + `merges.txt`.

tensorflow-text has no byte-level BPE, so this module implements the GPT-2 encoder
(openai/gpt-2 `src/encoder.py`, used by fairseq's RoBERTa; Hugging Face `tokenizers`' ByteLevelBPE with
add_prefix_space=False) with graph ops only:

1. Pre-tokenization with GPT-2's pattern
   `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+`.
   RE2 has no lookahead, so the text is first cut into maximal whitespace / non-whitespace runs and the
   `\\s+(?!\\S)` rule is applied to the runs: a whitespace run followed by text gives its first k-1
   characters as one token, and its last character either joins the next text run (when it is " ") or is
   a token of its own; a trailing whitespace run is one token. The text runs (with that optional leading
   space) are then split by the pattern's first seven alternatives, which never cross whitespace.
   `\\s` is Unicode White_Space as in Oniguruma/regex (tab..CR, U+0085, \\p{Z}), not RE2's ASCII `\\s`.
2. Each pre-token's UTF-8 bytes are mapped to printable characters (`bytes_to_unicode`).
3. BPE merges: all distinct words of the batch at once inside `tf.while_loop`; each step merges, in
   every word, the adjacent pair with the lowest rank (a StaticHashTable over merges.txt), all its
   non-overlapping occurrences left to right, as GPT-2's `bpe()`. It stops when no word can merge.
4. Symbols -> ids through the vocab.json table.

Known difference: RE2's Unicode tables predate Unicode 16, so the few letters it added (e.g. U+1C89,
U+A7CB) are not \p{L} here and split differently from `tokenizers` (tests/data/test_tokenizers.py
checks every code point below U+3000 and lists the exceptions).
"""
import json
import os

import tensorflow as tf

from plm_tf.data.tokenizers import common

BPE_SPECIALS = {"pad": "<pad>", "unk": "<unk>", "cls": "<s>", "sep": "</s>", "mask": "<mask>"}
_WS_CLASS = r"\t\n\x0B\f\r\x{85}\p{Z}"
_WS_RUN = "[" + _WS_CLASS + "]+"
_WORD_PATTERN = (r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^" + _WS_CLASS + r"\p{L}\p{N}]+")
_NO_RANK = tf.int64.max


def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode character map (openai/gpt-2 encoder.py)."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def resolve_bpe_paths(vocab_path):
    """A directory with vocab.json + merges.txt, or a vocab.json path with merges.txt beside it."""
    vocab_path = os.fspath(vocab_path)
    if os.path.isdir(vocab_path):
        vocab_json = os.path.join(vocab_path, "vocab.json")
        merges_txt = os.path.join(vocab_path, "merges.txt")
    else:
        vocab_json = vocab_path
        merges_txt = os.path.join(os.path.dirname(vocab_path), "merges.txt")
    common.check_exists(vocab_json, "BPE vocab.json")
    common.check_exists(merges_txt, "BPE merges.txt")
    return vocab_json, merges_txt


def read_bpe_files(vocab_json, merges_txt):
    """Parses and validates GPT-2-format files.

    Returns:
      (tokens: list of token strings by id ('' for an unused id), merges: list of (left, right)).
    Raises:
      TokenizerError naming the file and the problem.
    """
    try:
        with open(vocab_json, "rb") as f:
            vocab = json.loads(f.read().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise common.TokenizerError(f"{vocab_json} is not valid JSON: {e}") from None
    if not isinstance(vocab, dict) or not vocab:
        raise common.TokenizerError(f"{vocab_json} must be a non-empty JSON object mapping token -> id")
    by_id = {}
    for tok, i in vocab.items():
        if isinstance(i, bool) or not isinstance(i, int) or i < 0:
            raise common.TokenizerError(f"{vocab_json}: id of {tok!r} is {i!r}, not a non-negative integer")
        if i in by_id:
            raise common.TokenizerError(f"{vocab_json}: id {i} is used by {by_id[i]!r} and {tok!r}")
        by_id[i] = tok
    tokens = [""] * (max(by_id) + 1)
    for i, tok in by_id.items():
        tokens[i] = tok
    missing_bytes = [c for c in bytes_to_unicode().values() if c not in vocab]
    if missing_bytes:
        raise common.TokenizerError(
            f"{vocab_json} is not a byte-level vocabulary: {len(missing_bytes)} of the 256 byte symbols are "
            f"missing (e.g. {missing_bytes[:5]})")

    try:
        with open(merges_txt, "rb") as f:
            lines = f.read().decode("utf-8").split("\n")
    except UnicodeDecodeError as e:
        raise common.TokenizerError(f"{merges_txt} is not UTF-8: {e}") from None
    merges = []
    for n, line in enumerate(lines, 1):
        line = line.rstrip("\r")
        if not line or (n == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise common.TokenizerError(
                f"{merges_txt} line {n}: expected two tokens separated by one space, got {line!r}")
        for part in (parts[0], parts[1], parts[0] + parts[1]):
            if part not in vocab:
                raise common.TokenizerError(f"{merges_txt} line {n}: {part!r} is not in {vocab_json}")
        merges.append((parts[0], parts[1]))
    return tokens, merges


def pretokenize(texts):
    """GPT-2 pre-tokenization in RE2. tf.string [N] (valid UTF-8) -> tf.RaggedTensor string [N, None].

    The pre-tokens of a text partition it: their concatenation is the text.
    """
    # Splits are made by RE2 regex_replace inserting NUL around each match, then tf.strings.split on NUL
    # (2-3x faster than tensorflow_text.regex_split, which also stops at a NUL byte). So the text is
    # split with NUL -> U+0001 (both fall in the pattern's class [^\s\p{L}\p{N}]) and, only when a NUL
    # is present, the original text is cut at the same byte boundaries.
    has_nul = tf.reduce_any(tf.strings.regex_full_match(texts, r"(?s).*\x00.*"))
    words = _pretokenize_no_nul(tf.strings.regex_replace(texts, r"\x00", "\x01"))

    def restore():
        lengths = tf.strings.length(words.flat_values)
        ends = tf.cumsum(lengths)
        row_ids = words.value_rowids()
        row_base = tf.gather(tf.concat([[0], ends], 0), tf.gather(words.row_starts(), row_ids))
        return tf.strings.substr(tf.gather(texts, row_ids), ends - lengths - row_base, lengths)

    return words.with_flat_values(tf.cond(has_nul, restore, lambda: words.flat_values))


def _split_keeping_matches(texts, pattern):
    """Cuts NUL-free strings [M] before and after every match of `pattern` -> ragged [M, None]."""
    pieces = tf.strings.split(tf.strings.regex_replace(texts, pattern, "\x00\\0\x00"), "\x00")
    return tf.ragged.boolean_mask(pieces, tf.not_equal(pieces, ""))


def _pretokenize_no_nul(texts):
    runs = _split_keeping_matches(texts, _WS_RUN)  # alternating whitespace / text runs
    flat = runs.flat_values
    row_ids = runs.value_rowids()
    pos = tf.range(tf.size(flat, out_type=tf.int64)) - tf.gather(runs.row_starts(), row_ids)
    is_last = tf.equal(pos, tf.gather(runs.row_lengths(), row_ids) - 1)
    is_ws = tf.strings.regex_full_match(flat, _WS_RUN)
    n = tf.strings.length(flat, unit="UTF8_CHAR")
    head = tf.strings.substr(flat, tf.zeros_like(n), tf.maximum(n - 1, 0), unit="UTF8_CHAR")
    tail = tf.strings.substr(flat, tf.maximum(n - 1, 0), tf.ones_like(n), unit="UTF8_CHAR")
    ws_before_text = is_ws & tf.logical_not(is_last)  # \s+(?!\S) leaves its last character behind
    tail_is_space = ws_before_text & tf.equal(tail, " ")
    gets_space = tf.concat([[False], tail_is_space[:-1]], 0) & (pos > 0)
    seg_a = tf.where(ws_before_text, head, tf.where(gets_space, tf.strings.join([" ", flat]), flat))
    seg_b = tf.where(ws_before_text & tf.logical_not(tail_is_space), tail, "")
    segs = tf.reshape(tf.stack([seg_a, seg_b], axis=1), [-1])
    seg_rows = tf.reshape(tf.stack([row_ids, row_ids], axis=1), [-1])
    keep = tf.not_equal(segs, "")
    segs = tf.boolean_mask(segs, keep)
    seg_rows = tf.boolean_mask(seg_rows, keep)
    words = _split_keeping_matches(segs, _WORD_PATTERN)  # [S, None]
    nested = tf.RaggedTensor.from_value_rowids(words, seg_rows, nrows=tf.shape(texts, out_type=tf.int64)[0])
    return nested.merge_dims(1, 2)


class ByteLevelBPETokenizer(common.Tokenizer):
    """In-graph GPT-2 / RoBERTa byte-level BPE; ids equal HF `tokenizers` ByteLevelBPETokenizer's.

    Args:
      vocab_path: a directory holding vocab.json and merges.txt, or the vocab.json path (merges.txt
        beside it). The vocabulary must hold <s> </s> <pad> <unk> <mask> and the 256 byte symbols.

    The vocabulary and merge ranks are held in lookup tables built from constants (JSON cannot be read
    by a TextFileInitializer); both files are also tracked as `tf.saved_model.Asset`s so exports carry them.
    Special-token strings inside the text are NOT recognised (as HF without added tokens): "<mask>" in a
    text is tokenized as ordinary characters.
    """

    kind = "bpe"

    def __init__(self, vocab_path, name=None):
        super().__init__(name=name)
        vocab_json, merges_txt = resolve_bpe_paths(vocab_path)
        tokens, merges = read_bpe_files(vocab_json, merges_txt)
        token_to_id = {t: i for i, t in enumerate(tokens) if t}
        ids = common.require_specials(token_to_id, BPE_SPECIALS, vocab_json)
        self.vocab_path = os.path.dirname(os.path.abspath(vocab_json))
        self.vocab_asset = tf.saved_model.Asset(vocab_json)
        self.merges_asset = tf.saved_model.Asset(merges_txt)
        byte_map = bytes_to_unicode()
        self._byte_to_char = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant([bytes([b]) for b in range(256)]),
                tf.constant([byte_map[b] for b in range(256)])), default_value="")
        char_to_byte = [0] * 512
        for b, c in byte_map.items():
            char_to_byte[ord(c)] = b
        self._char_to_byte = tf.constant(char_to_byte, tf.int32)
        self._byte_strings = tf.constant([bytes([b]) for b in range(256)])
        self._ranks = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant([a + " " + b for a, b in merges], tf.string),
                tf.range(len(merges), dtype=tf.int64)), default_value=_NO_RANK)
        self._vocab = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(token_to_id.keys()), tf.string),
                tf.constant(list(token_to_id.values()), tf.int64)), default_value=ids["unk"])
        self._init_common(tokens, ids, [t.startswith("\u0120") for t in tokens])

    def _tokenize_batch(self, texts):
        words = pretokenize(texts)  # [N, W] strings
        # Each distinct pre-token is merged once (natural text repeats words; HF caches them likewise).
        unique_words, word_index = tf.unique(words.flat_values)
        symbols = self._byte_to_char.lookup(tf.strings.bytes_split(unique_words))  # [U, bytes]
        merged = self._merge(symbols)  # [U, S]
        ids = merged.with_flat_values(tf.cast(self._vocab.lookup(merged.flat_values), tf.int32))
        return words.with_flat_values(tf.gather(ids, word_index)).merge_dims(1, 2)

    def _merge(self, symbols):
        """Runs BPE on every word at once. tf.RaggedTensor string [W, None] -> [W, None]."""
        nwords = symbols.nrows()

        def step(values, splits, _):
            # Position i stands for the pair (symbol i, symbol i + 1); it is valid inside one word.
            row_ids = tf.RaggedTensor.from_row_splits(values, splits, validate=False).value_rowids()
            next_values = tf.concat([values, [""]], 0)[1:]
            next_rows = tf.concat([row_ids, [-1]], 0)[1:]
            keys = tf.strings.join([values, next_values], separator=" ")
            ranks = tf.where(tf.equal(row_ids, next_rows), self._ranks.lookup(keys), _NO_RANK)
            best = tf.math.unsorted_segment_min(ranks, row_ids, nwords)
            cand = tf.equal(ranks, tf.gather(best, row_ids)) & tf.less(ranks, _NO_RANK)
            # Non-overlapping occurrences left to right ("a a a" -> "aa a"): in a run of consecutive
            # candidate pairs take every other one, starting with the first.
            idx = tf.range(tf.size(cand, out_type=tf.int64))
            after_cand = tf.concat([[False], cand], 0)[:-1]
            run_start = cand & tf.logical_not(after_cand)
            run_id = tf.maximum(tf.cumsum(tf.cast(run_start, tf.int64)) - 1, 0)
            starts = tf.concat([tf.boolean_mask(idx, run_start), [0]], 0)
            take = cand & tf.equal((idx - tf.gather(starts, run_id)) % 2, 0)
            absorbed = tf.concat([[False], take], 0)[:-1]  # right symbol of a merged pair
            keep = tf.logical_not(absorbed)
            joined = tf.strings.join([values, next_values])
            new_values = tf.boolean_mask(tf.where(take, joined, values), keep)
            kept_rows = tf.boolean_mask(row_ids, keep)
            lengths = tf.math.bincount(kept_rows, minlength=nwords, maxlength=nwords, dtype=tf.int64)
            new_splits = tf.concat([[0], tf.cumsum(lengths)], 0)
            return new_values, new_splits, tf.reduce_any(take)

        values, splits, _ = tf.while_loop(
            lambda v, s, changed: changed, step,
            (symbols.flat_values, symbols.row_splits, tf.constant(True)),
            shape_invariants=(tf.TensorShape([None]), tf.TensorShape([None]), tf.TensorShape([])))
        return tf.RaggedTensor.from_row_splits(values, splits, validate=False)

    def _detokenize_ids(self, ids):
        text = tf.strings.reduce_join(self.id_to_token(ids), axis=-1)  # [N]
        chars = tf.strings.unicode_decode(text, "UTF-8")  # [N, C] code points
        byte_ids = tf.gather(self._char_to_byte, tf.minimum(chars, 511))
        return tf.strings.reduce_join(tf.gather(self._byte_strings, byte_ids), axis=-1)
