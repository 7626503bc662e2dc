"""Shared pieces of the in-graph tokenizers: the error type, input cleaning, the base class.

Every tokenizer in `plm_tf.data.tokenizers` is a `tf.Module` whose methods are pure TensorFlow /
tensorflow-text ops, so they run eagerly, inside `tf.data` map functions and inside a SavedModel.
"""
import os

import tensorflow as tf

PAD, UNK, CLS, SEP, MASK = "pad", "unk", "cls", "sep", "mask"
SPECIAL_ROLES = (PAD, UNK, CLS, SEP, MASK)


class TokenizerError(ValueError):
    """A vocabulary, a tokenizer option or an input that plm_tf cannot use, with the reason."""


class VocabNotFoundError(TokenizerError, FileNotFoundError):
    """The vocabulary path does not exist. Both a `TokenizerError` and a `FileNotFoundError`."""


def check_exists(path, what="vocabulary"):
    """Returns `os.fspath(path)`; raises VocabNotFoundError naming the path when it is missing."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise VocabNotFoundError(f"{what} not found: {path}")
    return path


def require_specials(token_to_id, tokens_by_role, path):
    """Looks the special tokens up BY STRING; raises TokenizerError naming every missing one.

    Args:
      token_to_id: dict token string -> id.
      tokens_by_role: dict role (pad/unk/cls/sep/mask) -> token string, e.g. {"cls": "<s>"}.
      path: the vocabulary path, for the message.
    Returns:
      dict role -> python int id.
    """
    missing = [tok for tok in tokens_by_role.values() if tok not in token_to_id]
    if missing:
        raise TokenizerError(
            f"vocabulary {path} lacks the required special token(s) {', '.join(missing)}; "
            f"this tokenizer needs {', '.join(tokens_by_role.values())}")
    return {role: int(token_to_id[tok]) for role, tok in tokens_by_role.items()}


def clean_utf8(texts):
    """Makes every string valid UTF-8: undecodable bytes become U+FFFD (one per maximal bad subpart).

    Args:
      texts: tf.string tensor of any shape.
    Returns:
      tf.string tensor of the same shape; valid UTF-8 input is returned unchanged.
    """
    return tf.strings.unicode_transcode(
        texts, input_encoding="UTF-8", output_encoding="UTF-8", errors="replace",
        replacement_char=0xFFFD, replace_control_characters=False)


class Tokenizer(tf.Module):
    """Base class: the interface shared by WordPiece, SentencePiece and byte-level BPE.

    Subclasses set `kind`, `vocab_size`, the `<role>_id` attributes, `_tokens` (a python list of the
    token strings by id, '' for unused ids), `_start_by_prefix` (python list of bools: the token string
    itself marks a word start) and implement `_tokenize_batch` and `_detokenize_tokens`.

    Attributes (python values, fixed at load time):
      kind: "wordpiece", "sentencepiece" or "bpe".
      vocab_size: int, number of ids (max id + 1).
      pad_id, unk_id, cls_id, sep_id, mask_id: ints, looked up by token string in the vocabulary.
      special_ids: sorted list of the ids above (never masked, never drawn as random replacements).
      vocab_path: str, the vocabulary it was loaded from (a directory for BPE).

    Ids passed to `id_to_token`, `is_special`, `word_start` and `detokenize` must lie in
    [0, vocab_size).

    Example:
      >>> tok = load_tokenizer("bpe", plm_tf.data.assets.default_vocab_path("bpe"))
      >>> ids = tok.tokenize(tf.constant(["It is a truth"]))     # RaggedTensor int32 [1, None]
      >>> tok.word_start(ids), tok.id_to_token(ids), tok.detokenize(ids)
    """

    kind = None

    def _init_common(self, tokens, special_ids_by_role, start_by_prefix):
        self.vocab_size = len(tokens)
        for role in SPECIAL_ROLES:
            setattr(self, f"{role}_id", int(special_ids_by_role[role]))
        self.special_ids = sorted(set(int(i) for i in special_ids_by_role.values()))
        is_special = [False] * len(tokens)
        for i in self.special_ids:
            is_special[i] = True
        self._token_strings = tf.constant(tokens, tf.string)
        self._is_special = tf.constant(is_special, tf.bool)
        # A special token is a word of its own (fairseq's whole-word mask treats specials as word starts).
        self._starts_word = tf.constant(
            [bool(s) or sp for s, sp in zip(start_by_prefix, is_special)], tf.bool)

    # ----- tokenize -------------------------------------------------------------------------------
    def tokenize(self, texts):
        """Text -> ids, no special tokens added.

        Args:
          texts: tf.string [N] (or a scalar). Bytes that are not valid UTF-8 are replaced by U+FFFD
            before tokenizing (`clean_utf8`).
        Returns:
          tf.RaggedTensor int32 [N, None]; for a scalar input a dense int32 [None].
        """
        texts = tf.convert_to_tensor(texts, tf.string)
        rank = texts.shape.rank
        if rank == 0:
            return self._tokenize_batch(clean_utf8(texts[tf.newaxis]))[0]
        if rank != 1:
            raise TokenizerError(f"tokenize expects a scalar or a 1-D string tensor, got shape {texts.shape}")
        return self._tokenize_batch(clean_utf8(texts))

    # ----- id-level helpers -----------------------------------------------------------------------
    def id_to_token(self, ids):
        """int ids (dense or ragged, any shape) -> tf.string token strings of the same shape."""
        return _map_values(lambda v: tf.gather(self._token_strings, tf.cast(v, tf.int32)), ids)

    def is_special(self, ids):
        """int ids (dense or ragged) -> bool, True for ids in `special_ids`."""
        return _map_values(lambda v: tf.gather(self._is_special, tf.cast(v, tf.int32)), ids)

    def word_start(self, ids):
        """True where a token starts a new word; used by whole-word and n-gram masking.

        A token starts a word when its string says so (WordPiece: no "##" prefix; SentencePiece: a
        leading "▁"; BPE: a leading "Ġ", as fairseq's GPT-2 `is_beginning_of_word`), when it is special,
        when the previous token is special, or when it is the first token of its row.

        Args:
          ids: int tensor [L] or [N, L] (dense) or tf.RaggedTensor [N, None].
        Returns:
          bool tensor of the same shape (ragged in, ragged out).
        """
        if isinstance(ids, tf.RaggedTensor):
            if ids.ragged_rank != 1:
                raise TokenizerError("word_start expects a ragged tensor [N, None] (ragged_rank 1)")
            flat = tf.cast(ids.flat_values, tf.int32)
            start = tf.gather(self._starts_word, flat)
            special = tf.gather(self._is_special, flat)
            first = tf.equal(tf.range(tf.size(flat, out_type=tf.int64)),
                             tf.gather(ids.row_starts(), ids.value_rowids()))
            prev_special = tf.concat([[False], special[:-1]], 0)
            return ids.with_flat_values(start | first | prev_special)
        ids = tf.cast(tf.convert_to_tensor(ids), tf.int32)
        if ids.shape.rank not in (1, 2):
            raise TokenizerError(f"word_start expects ids of rank 1 or 2, got shape {ids.shape}")
        start = tf.gather(self._starts_word, ids)
        special = tf.gather(self._is_special, ids)
        pad_false = tf.zeros_like(special[..., :1])
        prev_special = tf.concat([pad_false, special[..., :-1]], -1)
        first = tf.concat([tf.logical_not(pad_false), tf.zeros_like(special[..., 1:])], -1)
        return start | first | prev_special

    def detokenize(self, ids):
        """ids -> text (best effort, for prediction and debugging); padding ids are dropped.

        Args:
          ids: int tf.RaggedTensor [N, None] or dense [N, L]; or dense [L] for one text.
        Returns:
          tf.string [N] (or a scalar for [L] input).
        """
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.convert_to_tensor(ids)
            if ids.shape.rank == 1:
                return self.detokenize(ids[tf.newaxis])[0]
            ids = tf.RaggedTensor.from_tensor(ids)
        ids = tf.cast(ids, tf.int32)
        ids = tf.ragged.boolean_mask(ids, tf.not_equal(ids, self.pad_id))
        return self._detokenize_ids(ids)


def _map_values(fn, ids):
    if isinstance(ids, tf.RaggedTensor):
        return tf.ragged.map_flat_values(fn, ids)
    return fn(tf.convert_to_tensor(ids))
