"""The serving graph: raw text → tokens → packed ids → encoder → answers, as one SavedModel module.

Everything a client needs runs inside the SavedModel (only `import tensorflow_text` is required before loading
it, because the tokenizers use tf-text ops):

    text [B] ──tokenize──▶ ragged ids ──truncate──▶ add specials ──pad to T──▶ ids / mask / type ids [B, T]
                                                                           ──▶ encoder (+ head) ──▶ outputs

T is the export's `max_seq_length` (default 128): every text signature returns [B, T] tensors, padded, so a
batching server can stack answers. Layouts (`pack_segments`):

    layout     one text              a pair                          type ids of the second segment
    "bert"     [CLS] A [SEP]         [CLS] A [SEP] B [SEP]           1 (BERT, ALBERT, ELECTRA)
    "roberta"  <s> A </s>            <s> A </s></s> B </s>           0 (fairseq RoBERTa has one type row)

Truncation keeps the start of each text. A pair is cut "longest first" as google-research/bert
`_truncate_seq_pair` does (tokens are removed from the longer segment, from the second on a tie), computed in
closed form. `truncated` [B] bool says which rows lost tokens.

Signatures of `ServingModule` (B = batch, T = max_seq_length, H = hidden size, V = vocabulary size):

    ELECTRA (objective "electra")
      serving_default(text [B] string)                  replaced-token detection of single texts
      serving_pairs(text_a [B], text_b [B] string)      the same for pairs
          → replaced_probability float32 [B, T]  sigmoid of the discriminator logit; 0 at padding
            tokens               string  [B, T]  token strings; "" at padding
            input_mask           int32   [B, T]  1 for real tokens (specials included), 0 for padding
            score                float32 [B]     mean replaced_probability over the text's own tokens
                                                 (specials and padding excluded); 0 when it has none
            truncated            bool    [B]     True when tokens beyond T were dropped
      token_ids(input_word_ids, input_mask, input_type_ids int32 [B, T'], T' ≤ the position table)
          → logits float32 [B, T'] (discriminator logits, positive = replaced), sequence_output [B, T', H]
    every family (ELECTRA discriminator, RoBERTa, ALBERT, BERT encoders)
      encode(text [B]) and encode_pairs(text_a [B], text_b [B])
          → sequence_output float32 [B, T, H], sentence_embedding float32 [B, H], tokens, input_mask, truncated
      for "mlm", "mlm_nsp", "mlm_sop": serving_default = encode, and
      token_ids(...) → logits float32 [B, T', V] (masked-LM logits at every position), sequence_output
      fill_mask(text [B] string, top_k [] int32): every MASK_TOKENS[kind] ("[MASK]", RoBERTa "<mask>") in a text
          becomes the mask id (the text between masks is tokenized piece by piece; byte-level BPE drops the
          whitespace before a mask, as HF RoBERTa's <mask> with lstrip), K = min(top_k, V)
          → top_ids int32 [B, T, K], top_tokens string [B, T, K], top_probabilities float32 [B, T, K]
            (softmax of the masked-LM logits, sorted, at every position), is_mask bool [B, T] (the positions
            of the masks), tokens, input_mask, truncated (a mask beyond T is dropped)
    a bare encoder (objective None: a converted `BertModel`, a sentence-transformers model)
      serving_default = encode, encode_pairs, and token_ids(...) → sequence_output float32 [B, T', H]

`sentence_embedding` ("auto" by default):
    "pooled"  the encoder's tanh pooler on the first token; "auto" uses it where pretraining trained it
              (BERT "mlm_nsp", ALBERT "mlm_sop").
    "mean"    mean of sequence_output over real tokens (input_mask = 1, specials included); "auto" uses it for
              ELECTRA (no pooler) and RoBERTa (its pooler is never trained by the masked-LM objective).
    "cls"     sequence_output at the first token ([CLS] / <s>), without the pooler.
A bare encoder's "auto" is "pooled" when it has a pooler, else "mean"; a converted sentence-transformers model
records its own pooling mode in model.json, which `python -m plm_tf.export` passes here.
An empty batch (B = 0) returns empty outputs of the documented shapes.
"""
import keras
import tensorflow as tf

from plm_tf.models.encoder import TransformerEncoder
from plm_tf.models.pretraining import ElectraPretrainer, MaskedLMPretrainer

LAYOUTS = ("bert", "roberta")
SENTENCE_EMBEDDINGS = ("auto", "pooled", "mean", "cls")
_TRAINED_POOLER = ("mlm_nsp", "mlm_sop")


# The mask token's string per tokenizer kind (plm_tf.data.tokenizers: WORDPIECE_, SENTENCEPIECE_, BPE_SPECIALS).
MASK_TOKENS = {"wordpiece": "[MASK]", "sentencepiece": "[MASK]", "bpe": "<mask>"}
_MLM_OBJECTIVES = ("mlm", "mlm_nsp", "mlm_sop")


class ExportError(ValueError):
    """A model, tokenizer or export option that cannot be exported as asked; the message says why."""


def num_special_tokens(layout, pair):
    """Special tokens `pack_segments` adds: bert 2 (pair 3), roberta 2 (pair 4)."""
    if layout not in LAYOUTS:
        raise ExportError(f"layout must be one of {LAYOUTS}, got {layout!r}.")
    if not pair:
        return 2
    return 3 if layout == "bert" else 4


def truncation_lengths(lengths_a, lengths_b, budget):
    """How many tokens of each segment fit in `budget`, longest first (google-research/bert `_truncate_seq_pair`).

    Args:
        lengths_a: int64 [B] token counts of the first segment.
        lengths_b: int64 [B] of the second, or None for single texts.
        budget: python int, the tokens left after the special tokens.
    Returns:
        (keep_a int64 [B], keep_b int64 [B] or None).
    """
    budget = tf.constant(budget, tf.int64)
    if lengths_b is None:
        return tf.minimum(lengths_a, budget), None
    # Removing from the longer segment (the second on a tie) until the pair fits ends with the first segment at
    # max(ceil(budget / 2), budget - len_b) when it was longer than that, the second filling the rest.
    half_up = (budget + 1) // 2
    keep_a = tf.minimum(lengths_a, tf.maximum(half_up, budget - lengths_b))
    keep_b = tf.minimum(lengths_b, budget - keep_a)
    return keep_a, keep_b


def _keep_first(ragged, keep):
    """ragged [B, None], keep int64 [B] → the first keep[b] values of every row."""
    positions = tf.ragged.range(ragged.row_lengths())
    inside = positions.flat_values < tf.gather(keep, positions.value_rowids())
    return tf.ragged.boolean_mask(ragged, positions.with_flat_values(inside))


def _column(batch_size, value):
    """A ragged [B, 1] column of int32 `value`."""
    return tf.RaggedTensor.from_tensor(tf.fill(tf.stack([batch_size, 1]), tf.constant(value, tf.int32)))


def pack_segments(segment_ids, max_seq_length, cls_id, sep_id, pad_id, layout="bert", second_type_id=1):
    """Truncates, adds the special tokens of `layout` (module docstring) and pads to `max_seq_length`.

    Args:
        segment_ids: a list of one or two tf.RaggedTensor int32 [B, None], token ids without specials.
        max_seq_length: T, python int, at least the number of special tokens + 1 per segment.
        cls_id, sep_id, pad_id: python ints (for "roberta": <s>, </s>, <pad>).
        layout: "bert" or "roberta".
        second_type_id: input_type_ids value of the second segment and its closing separator (0 when the
            model has a single type row).

    Returns:
        dict of int32 [B, T] "input_word_ids", "input_mask" (1 = real token), "input_type_ids",
        "content_mask" (1 = a token of the texts, 0 = special or padding), and bool [B] "truncated".
    """
    if len(segment_ids) not in (1, 2):
        raise ExportError(f"pack_segments takes one or two segments, got {len(segment_ids)}.")
    pair = len(segment_ids) == 2
    specials = num_special_tokens(layout, pair)
    if max_seq_length < specials + len(segment_ids):
        raise ExportError(
            f"max_seq_length={max_seq_length} leaves no room for text: {layout!r} "
            f"{'pairs' if pair else 'texts'} need {specials} special tokens plus one token per segment.")
    segs = [tf.cast(s, tf.int32) for s in segment_ids]
    lengths = [s.row_lengths() for s in segs]
    keep_a, keep_b = truncation_lengths(lengths[0], lengths[1] if pair else None, max_seq_length - specials)
    truncated = keep_a < lengths[0]
    kept = [_keep_first(segs[0], keep_a)]
    if pair:
        truncated |= keep_b < lengths[1]
        kept.append(_keep_first(segs[1], keep_b))
    batch = segs[0].nrows(out_type=tf.int32)

    def column(value):
        return _column(batch, value)

    def like(ragged, value):
        return ragged.with_flat_values(tf.fill(tf.shape(ragged.flat_values), tf.constant(value, tf.int32)))

    # Each part: (ids, type id, content flag).
    parts = [(column(cls_id), 0, 0), (kept[0], 0, 1), (column(sep_id), 0, 0)]
    if pair:
        if layout == "roberta":
            parts.append((column(sep_id), second_type_id, 0))
        parts += [(kept[1], second_type_id, 1), (column(sep_id), second_type_id, 0)]
    ids = tf.concat([p[0] for p in parts], axis=1)
    type_ids = tf.concat([like(p[0], p[1]) for p in parts], axis=1)
    content = tf.concat([like(p[0], p[2]) for p in parts], axis=1)
    shape = [None, max_seq_length]
    return {
        "input_word_ids": ids.to_tensor(default_value=pad_id, shape=shape),
        "input_mask": tf.ones_like(ids).to_tensor(default_value=0, shape=shape),
        "input_type_ids": type_ids.to_tensor(default_value=0, shape=shape),
        "content_mask": content.to_tensor(default_value=0, shape=shape),
        "truncated": truncated,
    }


def sentence_embedding(sequence_output, input_mask, mode, pooled_output=None):
    """One vector per text from the encoder outputs.

    Args:
        sequence_output: float [B, T, H].
        input_mask: int [B, T], 1 for real tokens.
        mode: "pooled" (needs pooled_output), "mean" (masked mean; a row without real tokens gives zeros) or
            "cls" (the first token).
        pooled_output: float [B, H] or None.
    Returns:
        float [B, H].
    """
    if mode == "pooled":
        if pooled_output is None:
            raise ExportError("sentence_embedding='pooled' needs an encoder with a pooler (use_pooler=True).")
        return pooled_output
    if mode == "cls":
        return sequence_output[:, 0, :]
    if mode == "mean":
        weights = tf.cast(input_mask, sequence_output.dtype)[:, :, tf.newaxis]
        total = tf.reduce_sum(sequence_output * weights, axis=1)
        return tf.math.divide_no_nan(total, tf.reduce_sum(weights, axis=1))
    raise ExportError(f"sentence_embedding mode must be 'pooled', 'mean' or 'cls', got {mode!r}.")


def resolve_sentence_embedding(mode, objective, has_pooler):
    """The concrete mode for `mode` ∈ SENTENCE_EMBEDDINGS (module docstring explains "auto")."""
    if mode not in SENTENCE_EMBEDDINGS:
        raise ExportError(f"sentence_embedding must be one of {SENTENCE_EMBEDDINGS}, got {mode!r}.")
    if mode == "auto":
        return "pooled" if (objective in _TRAINED_POOLER or objective is None) and has_pooler else "mean"
    if mode == "pooled" and not has_pooler:
        raise ExportError("sentence_embedding='pooled' needs an encoder with a pooler; this one has none.")
    return mode


def serving_parts(model):
    """Splits a pretraining model into what is served.

    Args:
        model: a built `ElectraPretrainer`, `MaskedLMPretrainer` or bare `TransformerEncoder`.
    Returns:
        (objective, encoder, head): the ELECTRA discriminator and its ReplacedTokenHead (the generator is not
        exported), the MLM encoder and its tied MaskedLMHead (an NSP/SOP head is not exported), or
        (None, the encoder, None).
    """
    if isinstance(model, TransformerEncoder):
        return None, model, None
    if isinstance(model, ElectraPretrainer):
        return "electra", model.discriminator, model.discriminator_head
    if isinstance(model, MaskedLMPretrainer):
        return model.objective, model.encoder, model.masked_lm_head
    raise ExportError(f"Cannot export {type(model).__name__}: expected an ElectraPretrainer, MaskedLMPretrainer or "
                      f"TransformerEncoder.")


def layout_for(tokenizer):
    """The special-token layout: RoBERTa's `<s> A </s></s> B </s>` for byte-level BPE vocabularies, BERT's
    `[CLS] A [SEP] B [SEP]` otherwise — the same rule fine-tuning uses (`plm_tf.finetuning.features`)."""
    return "roberta" if tokenizer.kind == "bpe" else "bert"


class ServingModule(tf.Module):
    """The exported object: tokenizer + encoder (+ head) with the signatures of the module docstring.

    Args:
        model: a built `ElectraPretrainer`, `MaskedLMPretrainer` or `TransformerEncoder` (weights restored).
        tokenizer: a `plm_tf.data.tokenizers` tokenizer whose `vocab_size` equals the model's.
        max_seq_length: T of the text signatures; at most the encoder's position table (minus its offset).
        sentence_embedding: one of SENTENCE_EMBEDDINGS.

    Attributes kept in the SavedModel: `tokenizer` (its vocabulary files are assets), `model_variables` (the
    tf.Variable of every weight of the served encoder and head, tracked explicitly as Keras variables are not
    tf.Module children) and `serving_config()`, a function (not a signature) returning scalars
    "max_seq_length" (int32), "objective", "layout", "sentence_embedding" and "tokenizer_kind" (strings).

    Pair signatures need text_a and text_b of the same length B; otherwise the call fails with
    InvalidArgumentError "text_a and text_b must have the same length".
    """

    def __init__(self, model, tokenizer, max_seq_length=128, sentence_embedding="auto"):
        super().__init__(name="plm_tf_serving")
        objective, encoder, head = serving_parts(model)
        if not model.built:
            raise ExportError("Build the model (model.build()) and restore its weights before exporting.")
        if tokenizer.vocab_size != encoder.vocab_size:
            raise ExportError(
                f"The tokenizer has {tokenizer.vocab_size} tokens but the model's vocab_size is "
                f"{encoder.vocab_size}; export with the vocabulary the model was trained with.")
        capacity = encoder.max_position_embeddings - encoder.position_offset
        if not isinstance(max_seq_length, int) or isinstance(max_seq_length, bool) or max_seq_length < 1:
            raise ExportError(f"max_seq_length must be a positive int, got {max_seq_length!r}.")
        if max_seq_length > capacity:
            raise ExportError(
                f"max_seq_length={max_seq_length} exceeds the model's {capacity} positions "
                f"(max_position_embeddings={encoder.max_position_embeddings}, "
                f"position_offset={encoder.position_offset}).")
        self.layout_name = layout_for(tokenizer)
        if max_seq_length < num_special_tokens(self.layout_name, pair=True) + 2:
            raise ExportError(
                f"max_seq_length={max_seq_length} is too short: pairs need "
                f"{num_special_tokens(self.layout_name, pair=True)} special tokens and one token per text.")
        mode = resolve_sentence_embedding(sentence_embedding, objective, encoder.pooler is not None)

        self.tokenizer = tokenizer
        # The tf.Variables under the Keras variables: a Keras variable exports as a second, differently named copy
        # that the TF1 loader restores while the functions keep reading the first (uninitialised under TF Serving).
        head_variables = list(head.variables) if head is not None else []
        self.model_variables = [_tf_variable(v) for v in list(encoder.variables) + head_variables]
        config = {"max_seq_length": max_seq_length, "objective": objective or "none", "layout": self.layout_name,
                  "sentence_embedding": mode, "tokenizer_kind": tokenizer.kind}
        self.serving_config = tf.function(
            lambda: {key: tf.constant(value) for key, value in config.items()}, input_signature=[])
        # Python-side settings (not tracked).
        self._settings = dict(objective=objective, max_seq_length=max_seq_length, mode=mode,
                              second_type_id=1 if encoder.type_vocab_size > 1 else 0)
        self._keras = _Untracked(encoder=encoder, head=head)

        text = tf.TensorSpec([None], tf.string, name="text")
        text_a = tf.TensorSpec([None], tf.string, name="text_a")
        text_b = tf.TensorSpec([None], tf.string, name="text_b")
        ids = [tf.TensorSpec([None, None], tf.int32, name=n) for n in ("input_word_ids", "input_mask", "input_type_ids")]
        self.encode = tf.function(self._encode_single, input_signature=[text])
        self.encode_pairs = tf.function(self._encode_pairs, input_signature=[text_a, text_b])
        self.token_ids = tf.function(self._token_ids, input_signature=ids)
        if objective in _MLM_OBJECTIVES:
            top_k = tf.TensorSpec([], tf.int32, name="top_k")
            self.fill_mask = tf.function(self._fill_mask, input_signature=[text, top_k])
        if objective == "electra":
            self.detect = tf.function(self._detect_single, input_signature=[text])
            self.detect_pairs = tf.function(self._detect_pairs, input_signature=[text_a, text_b])

    # ----- what the signatures compute ----------------------------------------------------------------
    def signatures(self):
        """{signature name: concrete function} for `tf.saved_model.save`."""
        sigs = {
            "encode": self.encode.get_concrete_function(),
            "encode_pairs": self.encode_pairs.get_concrete_function(),
            "token_ids": self.token_ids.get_concrete_function(),
        }
        if self._settings["objective"] == "electra":
            sigs["serving_default"] = self.detect.get_concrete_function()
            sigs["serving_pairs"] = self.detect_pairs.get_concrete_function()
        else:
            sigs["serving_default"] = sigs["encode"]
        if self._settings["objective"] in _MLM_OBJECTIVES:
            sigs["fill_mask"] = self.fill_mask.get_concrete_function()
        return sigs

    def pack(self, text_a, text_b=None):
        """Strings [B] (and [B]) → `pack_segments` features [B, T] (+ "truncated" [B])."""
        segments = [self.tokenizer.tokenize(text_a)]
        if text_b is not None:
            with tf.control_dependencies([tf.debugging.assert_equal(
                    tf.shape(text_a), tf.shape(text_b), message="text_a and text_b must have the same length")]):
                segments.append(self.tokenizer.tokenize(tf.identity(text_b)))
        tok = self.tokenizer
        return pack_segments(segments, self._settings["max_seq_length"], tok.cls_id, tok.sep_id, tok.pad_id,
                             self.layout_name, self._settings["second_type_id"])

    def _run_encoder(self, ids, mask, type_ids):
        """Encoder + head on int32 [B, T] inputs (B = 0 gives empty outputs).

        Returns:
            (sequence_output float [B, T, H], pooled_output float [B, H] or None, head output: ELECTRA logits
            float [B, T], masked-LM logits float [B, T, V], or None for a bare encoder).
        """
        encoder, head = self._keras.encoder, self._keras.head
        out = encoder({"input_ids": ids, "input_mask": mask, "segment_ids": type_ids}, training=False)
        seq = out["sequence_output"]
        if head is None:
            logits = None
        elif self._settings["objective"] == "electra":
            logits = tf.cast(head(seq), tf.float32)
        else:
            logits = tf.cast(head(seq, encoder.embedding_table, None), tf.float32)
        pooled = out.get("pooled_output")
        return tf.cast(seq, tf.float32), None if pooled is None else tf.cast(pooled, tf.float32), logits

    def _tokens(self, features):
        strings = self.tokenizer.id_to_token(features["input_word_ids"])
        return tf.where(features["input_mask"] > 0, strings, tf.constant(""))

    def _encode(self, features):
        seq, pooled, _ = self._run_encoder(
            features["input_word_ids"], features["input_mask"], features["input_type_ids"])
        return {
            "sequence_output": seq,
            "sentence_embedding": sentence_embedding(seq, features["input_mask"], self._settings["mode"], pooled),
            "tokens": self._tokens(features),
            "input_mask": features["input_mask"],
            "truncated": features["truncated"],
        }

    def _detect(self, features):
        mask = features["input_mask"]
        _, _, logits = self._run_encoder(features["input_word_ids"], mask, features["input_type_ids"])
        probability = tf.sigmoid(logits) * tf.cast(mask, tf.float32)
        content = tf.cast(features["content_mask"], tf.float32)
        score = tf.math.divide_no_nan(tf.reduce_sum(probability * content, axis=1), tf.reduce_sum(content, axis=1))
        return {
            "replaced_probability": probability,
            "tokens": self._tokens(features),
            "input_mask": mask,
            "score": score,
            "truncated": features["truncated"],
        }

    def _encode_single(self, text):
        return self._encode(self.pack(text))

    def _encode_pairs(self, text_a, text_b):
        return self._encode(self.pack(text_a, text_b))

    def _detect_single(self, text):
        return self._detect(self.pack(text))

    def _detect_pairs(self, text_a, text_b):
        return self._detect(self.pack(text_a, text_b))

    def masked_ids(self, text):
        """Strings [B] → ragged int32 [B, None] ids, each MASK_TOKENS[kind] in the text replaced by the mask id."""
        tok = self.tokenizer
        pieces = tf.strings.split(text, sep=MASK_TOKENS[tok.kind])  # ragged [B, P]: P - 1 masks per text
        flat = pieces.flat_values
        last = tf.range(tf.size(flat, out_type=tf.int64)) == tf.gather(pieces.row_limits(), pieces.value_rowids()) - 1
        if tok.kind == "bpe":  # HF RoBERTa's <mask> is an AddedToken with lstrip=True
            flat = tf.where(last, flat, tf.strings.regex_replace(flat, r"\s+$", ""))
        ids = tok.tokenize(flat)  # ragged [N, L]
        follows = tf.cast(tf.logical_not(last), tf.int64)
        masks = tf.RaggedTensor.from_row_lengths(
            tf.fill([tf.reduce_sum(follows)], tf.constant(tok.mask_id, ids.dtype)), follows)
        joined = tf.concat([ids, masks], axis=1)  # [N, L + 1 or L]
        return tf.RaggedTensor.from_row_splits(joined, pieces.row_splits).merge_dims(1, 2)

    def _fill_mask(self, text, top_k):
        tok = self.tokenizer
        features = pack_segments([self.masked_ids(text)], self._settings["max_seq_length"], tok.cls_id, tok.sep_id,
                                 tok.pad_id, self.layout_name, self._settings["second_type_id"])
        mask = features["input_mask"]
        _, _, logits = self._run_encoder(features["input_word_ids"], mask, features["input_type_ids"])
        with tf.control_dependencies([tf.debugging.assert_positive(top_k, message="top_k must be positive")]):
            k = tf.minimum(top_k, tf.shape(logits)[-1])
        top = tf.math.top_k(tf.nn.softmax(logits, axis=-1), k=k)
        return {
            "top_ids": top.indices,
            "top_tokens": tok.id_to_token(top.indices),
            "top_probabilities": top.values,
            "is_mask": (features["input_word_ids"] == tok.mask_id) & (mask > 0),
            "tokens": self._tokens(features),
            "input_mask": mask,
            "truncated": features["truncated"],
        }

    def _token_ids(self, input_word_ids, input_mask, input_type_ids):
        seq, _, logits = self._run_encoder(input_word_ids, input_mask, input_type_ids)
        if logits is None:
            return {"sequence_output": seq}
        return {"logits": logits, "sequence_output": seq}


def _tf_variable(variable):
    """The tf.Variable holding a Keras 3 (TensorFlow backend) variable's value."""
    value = variable.value
    if not isinstance(value, tf.Variable):
        raise ExportError(f"{variable.path} is not backed by a tf.Variable (is the Keras backend TensorFlow?).")
    return value


class _Untracked:
    """Holds Keras objects without making them SavedModel children (their variables are tracked explicitly)."""

    def __init__(self, **objects):
        self.__dict__.update(objects)


def keras_reference(model, features, sentence_embedding_mode="mean"):
    """The same answers computed by calling the Keras model directly (the parity reference of the tests).

    Args:
        model: the pretraining model that was exported.
        features: `pack_segments` output (int32 [B, T] tensors).
        sentence_embedding_mode: "pooled", "mean" or "cls".
    Returns:
        dict of numpy-convertible tensors: "sequence_output" [B, T, H], "sentence_embedding" [B, H], "logits"
        ([B, T] for ELECTRA, [B, T, V] for a masked LM, absent for a bare encoder).
    """
    objective, encoder, head = serving_parts(model)
    out = encoder({"input_ids": features["input_word_ids"], "input_mask": features["input_mask"],
                   "segment_ids": features["input_type_ids"]}, training=False)
    seq = out["sequence_output"]
    answers = {
        "sequence_output": seq,
        "sentence_embedding": sentence_embedding(seq, features["input_mask"], sentence_embedding_mode,
                                                 out.get("pooled_output")),
    }
    if head is not None:
        logits = head(seq) if objective == "electra" else head(seq, encoder.embedding_table, None)
        answers["logits"] = keras.ops.convert_to_tensor(logits)
    return answers
