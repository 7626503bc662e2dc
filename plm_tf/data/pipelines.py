"""Pretraining input pipelines: text -> tokens -> examples -> masked, batched features. Pure tf.data.

Entry point: `pretraining_dataset` (gin-configurable). It returns an infinite, batched (drop_remainder),
prefetched `tf.data.Dataset` of dicts, T = seq_len, P = max_predictions_per_seq, B = batch size:

    input_ids            int32   [B, T]  token ids after masking
    input_mask           int32   [B, T]  1 for real tokens, 0 for padding
    segment_ids          int32   [B, T]  0 for the first segment, 1 for the second (all 0 for "mlm")
    masked_lm_positions  int32   [B, P]  positions of the predicted tokens, ascending, 0-padded
    masked_lm_ids        int32   [B, P]  original ids at those positions, 0-padded
    masked_lm_weights    float32 [B, P]  1.0 for a real prediction, 0.0 for a padding slot
    sentence_order_label int32   [B]     "mlm_sop" only: 1 = the two segments are swapped
    next_sentence_label  int32   [B]     "mlm_nsp" only: 1 = the second segment is from another document

Objectives and their defaults (each can be overridden):

    objective  follows                examples (module)                      tokenizer      masking
    "mlm"      RoBERTa (fairseq)      FULL-SENTENCES (packing.roberta_...)   bpe            80/10/10, fairseq count
    "mlm_nsp"  BERT                   NSP pairs (sentence_pairs)             wordpiece      80/10/10, BERT count
    "mlm_sop"  ALBERT                 SOP pairs (sentence_pairs)             sentencepiece  n-gram, 80/10/10, BERT count
    "electra"  google-research/electra  ExampleBuilder (packing.electra_...)  wordpiece      85/15, ELECTRA count

Epochs: the corpus is read once per epoch, epoch e = 0, 1, 2, ...; the example construction draws and the mask
of example i of epoch e are stateless functions of (seed, e, i) (masking.example_seed), so the same
(seed, epoch, index) gives the same example and mask, and each epoch masks afresh (dynamic masking).
The iterator is checkpointable with `tf.train.Checkpoint(iterator=it)`: restoring continues at the exact
position (the scan state, shuffle buffer and epoch counter are part of the iterator state).

Input shards (`plm_tf.data.sharding`): the stream is split into `input_shards` shards (by files, else by
documents), each with its own construction, masking and shuffling seeds (shard 0 keeps `seed`); an input
pipeline (`input_context`) builds only its shards and yields its replicas' batches.

Static baseline (`masking="static"`): `scripts/create_pretraining_data.py` writes `dupe_factor` masked
epochs to TFRecords (`write_static_examples`); `static_dataset` reads them back into identical batches.
"""
import os

import gin
import tensorflow as tf

from plm_tf.data import corpus
from plm_tf.data import heldout
from plm_tf.data import masking as masking_lib
from plm_tf.data import packing
from plm_tf.data import sentence_pairs
from plm_tf.data import sharding

OBJECTIVES = ("mlm", "mlm_nsp", "mlm_sop", "electra")
LABEL_KEY = {"mlm_sop": "sentence_order_label", "mlm_nsp": "next_sentence_label"}
DEFAULT_TOKENIZER = {"mlm": "bpe", "mlm_nsp": "wordpiece", "mlm_sop": "sentencepiece", "electra": "wordpiece"}
DEFAULT_UNIT = {"mlm": "token", "mlm_nsp": "token", "mlm_sop": "ngram", "electra": "token"}
POLICY = {"mlm": "bert", "mlm_nsp": "bert", "mlm_sop": "bert", "electra": "electra"}
COUNT_RULE = {"mlm": "fairseq", "mlm_nsp": "bert", "mlm_sop": "bert", "electra": "electra"}
INT_FEATURES = ("input_ids", "input_mask", "segment_ids", "masked_lm_positions", "masked_lm_ids")


class PipelineError(ValueError):
    """An invalid pipeline option; raised in Python before any graph runs."""


def feature_spec(objective, seq_len, max_predictions_per_seq):
    """{name: tf.TensorSpec} of one (unbatched) example of `objective`."""
    spec = {
        "input_ids": tf.TensorSpec([seq_len], tf.int32),
        "input_mask": tf.TensorSpec([seq_len], tf.int32),
        "segment_ids": tf.TensorSpec([seq_len], tf.int32),
        "masked_lm_positions": tf.TensorSpec([max_predictions_per_seq], tf.int32),
        "masked_lm_ids": tf.TensorSpec([max_predictions_per_seq], tf.int32),
        "masked_lm_weights": tf.TensorSpec([max_predictions_per_seq], tf.float32),
    }
    if objective in LABEL_KEY:
        spec[LABEL_KEY[objective]] = tf.TensorSpec([], tf.int32)
    return spec


def _check_objective(objective):
    if objective not in OBJECTIVES:
        raise PipelineError(f"objective must be one of {OBJECTIVES}, got {objective!r}")


def load_tokenizer(kind, vocab_path=None):
    """The colleague-provided tokenizer (`plm_tf.data.tokenizers.load_tokenizer`), defaulting to the embedded
    vocabulary of `kind` (`plm_tf.data.assets.default_vocab_path`). Errors (missing file, missing special
    tokens) are `TokenizerError`, a ValueError, raised here in Python."""
    from plm_tf.data import tokenizers
    if vocab_path is None:
        from plm_tf.data import assets
        vocab_path = assets.default_vocab_path(kind)
    return tokenizers.load_tokenizer(kind, vocab_path)


def default_corpus():
    """The embedded public-domain corpus (`plm_tf.data.assets.default_corpus_path`)."""
    from plm_tf.data import assets
    return [os.fspath(assets.default_corpus_path())]


def example_dataset(objective, files, tokenizer, seq_len, seed, epoch, packing_mode="full",
                    short_seq_prob=0.1, random_next_sentence=False, tokenizer_batch=256, shuffle_files=True,
                    documents="all", shard=0, num_shards=1):
    """One epoch of unmasked examples of one input shard: dicts {input_ids, segment_ids[, label]} with int32
    [T] / [] values.

    Args:
      objective: one of OBJECTIVES.
      files: corpus files (`corpus.prepare_files`).
      tokenizer: a `plm_tf.data.tokenizers` tokenizer.
      seq_len: T.
      seed: int; epoch: int or int64 scalar tensor (file order and construction draws depend on both).
      packing_mode: "mlm" only: "full" (FULL-SENTENCES) or "doc" (DOC-SENTENCES).
      short_seq_prob, random_next_sentence: sentence-pair options (sentence_pairs.pair_examples).
      tokenizer_batch: lines per tokenizer call.
      shuffle_files: shuffle the file order each epoch.
      documents: "all", "train" (without the held-out documents) or "heldout" (only those), see `heldout`.
      shard, num_shards: the input shard built (`plm_tf.data.sharding`): its files when there are at least
        `num_shards`, else its documents of the whole stream; construction draws from its shard seed.
    """
    _check_objective(objective)
    own_files = sharding.shard_files(files, shard, num_shards)
    # The file order depends on the run seed only, so that every shard numbers the documents alike.
    shuffle_seed = (tf.cast(epoch, tf.int64) * 1000003 + seed) if shuffle_files else None
    lines = heldout.select_documents(corpus.line_dataset(own_files or files, shuffle_seed=shuffle_seed), documents)
    if own_files is None:
        lines = sharding.select_shard_documents(lines, shard, num_shards)
    seed = sharding.shard_seed(seed, shard)
    tok = tokenizer
    if objective == "mlm":
        items = corpus.token_item_dataset(lines, tok, seq_len - 2, tokenizer_batch)
        ds = packing.roberta_examples(items, seq_len, tok.cls_id, tok.sep_id, tok.pad_id, packing_mode)
        return ds.map(lambda ids, segs: {"input_ids": ids, "segment_ids": segs})
    if objective == "electra":
        items = corpus.token_item_dataset(lines, tok, seq_len - 2, tokenizer_batch)
        ds = packing.electra_examples(items, seq_len, tok.cls_id, tok.sep_id, tok.pad_id, seed, epoch)
        return ds.map(lambda ids, segs: {"input_ids": ids, "segment_ids": segs})
    items = corpus.token_item_dataset(lines, tok, seq_len - 3, tokenizer_batch)
    task = "sop" if objective == "mlm_sop" else "nsp"
    ds = sentence_pairs.pair_examples(items, seq_len, tok.cls_id, tok.sep_id, tok.pad_id, seed, epoch, task,
                                      short_seq_prob, random_next_sentence)
    key = LABEL_KEY[objective]
    return ds.map(lambda ids, segs, label: {"input_ids": ids, "segment_ids": segs, key: label})


def make_mask_fn(objective, tokenizer, mask_prob, max_predictions_per_seq, mask_unit=None, max_ngram=3):
    """Returns fn(features, seed, epoch, index) -> the full feature dict of one masked example."""
    unit = mask_unit or DEFAULT_UNIT[objective]
    if unit not in masking_lib.UNITS:
        raise PipelineError(f"mask_unit must be one of {masking_lib.UNITS}, got {unit!r}")
    tok = tokenizer

    def fn(features, seed, epoch, index):
        ids = features["input_ids"]
        word_start = tok.word_start(ids) if unit != "token" else None
        masked, positions, labels, weights = masking_lib.mask_tokens(
            ids, masking_lib.example_seed(seed, epoch, index), vocab_size=tok.vocab_size,
            mask_id=tok.mask_id, special_ids=tok.special_ids, pad_id=tok.pad_id, mask_prob=mask_prob,
            max_predictions=max_predictions_per_seq, policy=POLICY[objective], count_rule=COUNT_RULE[objective],
            unit=unit, word_start=word_start, max_ngram=max_ngram)
        out = dict(features)
        out["input_ids"] = masked
        out["input_mask"] = tf.cast(tf.not_equal(ids, tok.pad_id), tf.int32)
        out["masked_lm_positions"] = positions
        out["masked_lm_ids"] = labels
        out["masked_lm_weights"] = weights
        return out

    return fn


def masked_epoch_dataset(objective, files, tokenizer, seq_len, seed, epoch, mask_fn, shard=0, num_shards=1,
                         num_parallel_calls=tf.data.AUTOTUNE, **example_kwargs):
    """One epoch of masked examples (finite) of one input shard (`example_dataset`). Example i of the shard's
    epoch is masked with seed (shard seed, epoch, i); the shard seed of shard 0 is `seed`."""
    ds = example_dataset(objective, files, tokenizer, seq_len, seed, epoch, shard=shard, num_shards=num_shards,
                         **example_kwargs).enumerate()
    seed = sharding.shard_seed(seed, shard)
    return ds.map(lambda i, f: mask_fn(f, seed, epoch, i), num_parallel_calls=num_parallel_calls)


def seeded_shuffle(ds, buffer_size, seed):
    """`ds.shuffle(buffer_size, seed=seed)` whose order depends on `seed` alone.

    `Dataset.shuffle` pairs its seed with TensorFlow's global seed (`tf.random.set_seed`), so the same
    arguments would give another order in a program that sets (or does not set) the global seed. This builds
    the same ShuffleDatasetV3 op with both seeds explicit: (seed, seed) — the pair `Dataset.shuffle` uses
    when the global seed equals `seed`, as in the trainer — with TensorFlow's rule that (0, 0) means
    (0, 2**31 - 1). The result is checkpointable like any tf.data iterator.
    """
    specs = tf.nest.flatten(ds.element_spec)
    variant = tf.raw_ops.ShuffleDatasetV3(
        input_dataset=tf.data.experimental.to_variant(ds), buffer_size=tf.constant(buffer_size, tf.int64),
        seed=tf.constant(seed, tf.int64), seed2=tf.constant(seed if seed else 2**31 - 1, tf.int64),
        seed_generator=tf.raw_ops.DummySeedGenerator(), reshuffle_each_iteration=False,
        output_types=[s.dtype for s in specs], output_shapes=[s.shape for s in specs])
    return tf.data.experimental.from_variant(variant, ds.element_spec)


def _shard_plan(batch_size, input_shards, input_context):
    """`sharding.plan`, its errors as PipelineError."""
    try:
        return sharding.plan(batch_size, input_shards, input_context)
    except sharding.ShardingError as error:
        raise PipelineError(str(error)) from None


@gin.configurable
def pretraining_dataset(objective="electra", corpus_paths=None, tokenizer_kind=None, vocab_path=None,
                        seq_len=128, batch_size=128, mask_prob=0.15, max_predictions_per_seq=None,
                        masking="dynamic", static_paths=None, mask_unit=None, max_ngram=3,
                        packing_mode="full", short_seq_prob=0.1, random_next_sentence=False, seed=0,
                        shuffle_buffer=1000, shuffle_files=True, invalid_utf8="skip", tokenizer_batch=256,
                        num_parallel_calls=tf.data.AUTOTUNE, input_context=None, input_shards=None, documents="all",
                        num_epochs=None):
    """Infinite batched pretraining dataset (module docstring lists the features).

    Args:
      objective: "mlm" (RoBERTa), "mlm_nsp" (BERT), "mlm_sop" (ALBERT) or "electra".
      corpus_paths: corpus files, directories or globs (corpus module); None = the embedded corpus.
      tokenizer_kind: "wordpiece", "sentencepiece" or "bpe"; None = the objective's default.
      vocab_path: vocabulary of that kind; None = the embedded vocabulary.
      seq_len: T.
      batch_size: global batch size B (of one micro-batch over every replica); the dataset yields batches of
        B / replicas (`input_context.num_replicas_in_sync`, 1 without a context), dropping the remainder.
      mask_prob: fraction of tokens to predict.
      max_predictions_per_seq: P; None = int((mask_prob + 0.005) * seq_len) (google-research/electra).
      masking: "dynamic" (mask in-graph every epoch) or "static" (read `static_paths` TFRecords).
      static_paths: TFRecord files / globs written by scripts/create_pretraining_data.py (masking="static").
      mask_unit: "token", "whole_word" or "ngram"; None = the objective's default.
      max_ngram: longest n-gram for mask_unit="ngram".
      packing_mode: "mlm" only: "full" (FULL-SENTENCES) or "doc" (DOC-SENTENCES).
      short_seq_prob: sentence pairs: share of shorter random target lengths.
      random_next_sentence: "mlm_sop" only: reproduce ALBERT's random-document B for one-line chunks.
      seed: int, the root of every random draw (file order, construction, masks, shuffling).
      shuffle_buffer: examples in each input shard's shuffle buffer (0 or 1 = no shuffling).
      shuffle_files: shuffle the file order each epoch.
      invalid_utf8: "skip" (drop undecodable lines in-graph) or "error" (scan first, raise CorpusError).
      tokenizer_batch: lines per tokenizer call.
      num_parallel_calls: parallelism of the masking map.
      input_context: tf.distribute.InputContext of this input pipeline (worker / TPU host): it builds only its
        input shards and yields its replicas' batches, consecutively per replica (`plm_tf.data.sharding`).
      input_shards: S, the input shards of the whole stream (files when there are at least S, else documents);
        None = the number of input pipelines. For a fixed S every pipeline count dividing S trains on the same
        global batches.
      documents: "all", "train" (the held-out documents left out) or "heldout" (only those); see
        `plm_tf.data.heldout` (the trainer trains on "train" when it evaluates on the held-out slice).
      num_epochs: None repeats forever; an int stops after epochs 0..num_epochs-1 (evaluation sets).
    Returns:
      tf.data.Dataset of feature dicts, [B, ...] as in the module docstring, repeating forever unless
      `num_epochs` is given.
    Raises:
      PipelineError / CorpusError / TokenizerError (all ValueError) for bad options, paths or vocabularies.
    """
    _check_objective(objective)
    if masking not in ("dynamic", "static"):
        raise PipelineError(f"masking must be 'dynamic' or 'static', got {masking!r}")
    if not 0.0 < mask_prob < 1.0:
        raise PipelineError(f"mask_prob must be in (0, 1), got {mask_prob}")
    if seq_len < 8:
        raise PipelineError(f"seq_len must be at least 8, got {seq_len}")
    if packing_mode not in ("full", "doc"):
        raise PipelineError(f"packing_mode must be 'full' or 'doc', got {packing_mode!r}")
    if max_predictions_per_seq is None:
        max_predictions_per_seq = masking_lib.default_max_predictions(seq_len, mask_prob)
    if max_predictions_per_seq < 1:
        raise PipelineError(f"max_predictions_per_seq must be >= 1, got {max_predictions_per_seq}")
    if documents not in heldout.DOCUMENT_SPLITS:
        raise PipelineError(f"documents must be one of {heldout.DOCUMENT_SPLITS}, got {documents!r}")
    if masking == "static" and documents != "all":
        raise PipelineError("documents='train'/'heldout' needs dynamic masking (static TFRecords hold all documents); "
                            "with static masking give the trainer pretrain.eval_corpus_paths")
    if num_epochs is not None and (masking == "static" or num_epochs < 1):
        raise PipelineError(f"num_epochs must be None or a positive int with dynamic masking, got {num_epochs!r}")
    if masking == "static":
        if static_paths is None:
            raise PipelineError("masking='static' needs static_paths (TFRecords from create_pretraining_data.py)")
        return static_dataset(static_paths, objective, seq_len, max_predictions_per_seq, batch_size, seed,
                              shuffle_buffer, input_context, input_shards)
    shards = _shard_plan(batch_size, input_shards, input_context)
    files = corpus.prepare_files(default_corpus() if corpus_paths is None else corpus_paths, invalid_utf8)
    tok = load_tokenizer(tokenizer_kind or DEFAULT_TOKENIZER[objective], vocab_path)
    corpus.check_has_tokens(files, tok)
    mask_fn = make_mask_fn(objective, tok, mask_prob, max_predictions_per_seq, mask_unit, max_ngram)
    example_kwargs = dict(packing_mode=packing_mode, short_seq_prob=short_seq_prob,
                          random_next_sentence=random_next_sentence, tokenizer_batch=tokenizer_batch,
                          shuffle_files=shuffle_files, documents=documents)

    def shard_chunks(shard):
        def one_epoch(epoch):
            return masked_epoch_dataset(objective, files, tok, seq_len, seed, epoch, mask_fn, shard,
                                        shards.num_shards, num_parallel_calls, **example_kwargs)

        ds = tf.data.Dataset.range(2**62 if num_epochs is None else num_epochs).flat_map(one_epoch)
        if shuffle_buffer > 1:
            ds = seeded_shuffle(ds, shuffle_buffer, sharding.shard_seed(seed, shard))
        return ds.batch(shards.chunk_size, drop_remainder=True)

    return sharding.combine(shards, shard_chunks)


# ----- static baseline: TFRecords -----------------------------------------------------------------------

def to_tf_example(features):
    """One example's numpy/tensor features -> serialized tf.train.Example (ints as int64, weights float)."""
    feats = {}
    for name, value in features.items():
        value = tf.reshape(tf.convert_to_tensor(value), [-1]).numpy()
        if name == "masked_lm_weights":
            feats[name] = tf.train.Feature(float_list=tf.train.FloatList(value=value.tolist()))
        else:
            feats[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=value.astype("int64").tolist()))
    return tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString()


def parse_tf_example(objective, seq_len, max_predictions_per_seq):
    """Returns fn(serialized) -> feature dict with the dtypes/shapes of `feature_spec`."""
    spec = feature_spec(objective, seq_len, max_predictions_per_seq)
    desc = {name: tf.io.FixedLenFeature(s.shape, tf.float32 if s.dtype == tf.float32 else tf.int64)
            for name, s in spec.items()}

    def parse(record):
        ex = tf.io.parse_single_example(record, desc)
        return {k: tf.cast(v, spec[k].dtype) for k, v in ex.items()}

    return parse


def write_static_examples(output_prefix, objective, corpus_paths=None, tokenizer_kind=None, vocab_path=None,
                          seq_len=128, mask_prob=0.15, max_predictions_per_seq=None, dupe_factor=10,
                          num_shards=4, seed=0, mask_unit=None, max_ngram=3, packing_mode="full",
                          short_seq_prob=0.1, random_next_sentence=False, invalid_utf8="skip"):
    """Writes `dupe_factor` fixed-mask copies of the corpus (epochs 0..dupe_factor-1 of the dynamic pipeline,
    unshuffled) round-robin into `num_shards` TFRecord files `{output_prefix}-{i:05d}-of-{n:05d}.tfrecord`.

    Returns (list of written paths, number of examples). The features are those of `feature_spec`.
    """
    _check_objective(objective)
    if dupe_factor < 1 or num_shards < 1:
        raise PipelineError("dupe_factor and num_shards must be >= 1")
    if max_predictions_per_seq is None:
        max_predictions_per_seq = masking_lib.default_max_predictions(seq_len, mask_prob)
    files = corpus.prepare_files(default_corpus() if corpus_paths is None else corpus_paths, invalid_utf8)
    tok = load_tokenizer(tokenizer_kind or DEFAULT_TOKENIZER[objective], vocab_path)
    corpus.check_has_tokens(files, tok)
    mask_fn = make_mask_fn(objective, tok, mask_prob, max_predictions_per_seq, mask_unit, max_ngram)
    paths = [f"{output_prefix}-{i:05d}-of-{num_shards:05d}.tfrecord" for i in range(num_shards)]
    parent = os.path.dirname(output_prefix)
    if parent:
        tf.io.gfile.makedirs(parent)
    writers = [tf.io.TFRecordWriter(p) for p in paths]
    count = 0
    try:
        for epoch in range(dupe_factor):
            ds = masked_epoch_dataset(objective, files, tok, seq_len, seed, epoch, mask_fn,
                                      packing_mode=packing_mode, short_seq_prob=short_seq_prob,
                                      random_next_sentence=random_next_sentence, shuffle_files=False)
            for features in ds.as_numpy_iterator():
                writers[count % num_shards].write(to_tf_example(features))
                count += 1
    finally:
        for w in writers:
            w.close()
    return paths, count


def _check_static_record(path, objective, seq_len, max_predictions_per_seq):
    """Reads the first record of `path` in Python; PipelineError if its features do not match the request."""
    try:
        record = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
    except tf.errors.OpError as e:
        raise PipelineError(f"static TFRecords: cannot read {path}: {e.message}") from None
    if record is None:
        raise PipelineError(f"static TFRecords: {path} holds no record")
    try:
        feats = tf.train.Example.FromString(record.numpy()).features.feature
    except Exception as e:  # protobuf DecodeError: not a tf.train.Example
        raise PipelineError(f"static TFRecords: {path} does not hold tf.train.Example records ({e})") from None
    spec = feature_spec(objective, seq_len, max_predictions_per_seq)
    for name, s in spec.items():
        if name not in feats:
            raise PipelineError(f"static TFRecords: {path} lacks feature {name!r} (written for another objective?)")
        values = feats[name].float_list.value if s.dtype == tf.float32 else feats[name].int64_list.value
        want = s.shape.num_elements()
        if len(values) != want:
            raise PipelineError(f"static TFRecords: {path} has {name} of length {len(values)}, expected {want} "
                                f"(seq_len={seq_len}, max_predictions_per_seq={max_predictions_per_seq})")


def static_dataset(paths, objective, seq_len, max_predictions_per_seq, batch_size, seed=0,
                   shuffle_buffer=1000, input_context=None, input_shards=None):
    """Reads static TFRecords back into the batches of `pretraining_dataset` (infinite, drop_remainder).

    Input shards as in `pretraining_dataset` (`plm_tf.data.sharding`): shard s reads the files `files[s::S]`
    when there are at least S files, else the records r ≡ s (mod S).
    """
    _check_objective(objective)
    try:
        files = corpus.resolve_paths(paths)
    except corpus.CorpusError as e:
        raise PipelineError(f"static TFRecords: {e}") from None
    _check_static_record(files[0], objective, seq_len, max_predictions_per_seq)
    shards = _shard_plan(batch_size, input_shards, input_context)
    parse = parse_tf_example(objective, seq_len, max_predictions_per_seq)

    def shard_chunks(shard):
        own_files = sharding.shard_files(files, shard, shards.num_shards)
        ds = tf.data.TFRecordDataset(own_files or files)
        if own_files is None and shards.num_shards > 1:
            ds = ds.shard(shards.num_shards, shard)
        ds = ds.repeat()
        if shuffle_buffer > 1:
            ds = seeded_shuffle(ds, shuffle_buffer, sharding.shard_seed(seed, shard))
        return ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE).batch(shards.chunk_size, drop_remainder=True)

    return sharding.combine(shards, shard_chunks)
