"""Writes the static-masking baseline: `dupe_factor` fixed-mask copies of a corpus as sharded TFRecords.

Copy e is epoch e of the dynamic pipeline (same example construction and masks, files in order, no
shuffling), so static and dynamic masking differ only in how often a mask is redrawn (RoBERTa §4.1's
ablation; google-research/bert `create_pretraining_data.py --dupe_factor`). Each record is a
tf.train.Example with the features of `plm_tf.data.pipelines.feature_spec`. Read them back with

    pipelines.pretraining_dataset(objective, masking="static", static_paths="OUT-*.tfrecord", ...)

Example:
    python scripts/create_pretraining_data.py --objective=electra --output_prefix=/tmp/electra/train \
        --seq_len=128 --dupe_factor=10 --num_shards=8
"""
import json
import time

from absl import app
from absl import flags

from plm_tf.cli import exit_with_error
from plm_tf.data import corpus
from plm_tf.data import pipelines

FLAGS = flags.FLAGS
flags.DEFINE_enum("objective", "electra", list(pipelines.OBJECTIVES), "Pretraining objective.")
flags.DEFINE_list("corpus_paths", None, "Corpus files, folders or globs; default: the embedded corpus.")
flags.DEFINE_string("output_prefix", None, "Output prefix: PREFIX-00000-of-0000N.tfrecord.", required=True)
flags.DEFINE_enum("tokenizer_kind", None, ["wordpiece", "sentencepiece", "bpe"],
                  "Tokenizer; default: the objective's.")
flags.DEFINE_string("vocab_path", None, "Vocabulary; default: the embedded one of that kind.")
flags.DEFINE_integer("seq_len", 128, "Sequence length T.")
flags.DEFINE_float("mask_prob", 0.15, "Masking probability.")
flags.DEFINE_integer("max_predictions_per_seq", None, "P; default int((mask_prob + 0.005) * seq_len).")
flags.DEFINE_integer("dupe_factor", 10, "Number of differently masked copies.")
flags.DEFINE_integer("num_shards", 4, "Number of output files.")
flags.DEFINE_integer("seed", 0, "Root seed.")
flags.DEFINE_enum("mask_unit", None, ["token", "whole_word", "ngram"], "Default: the objective's.")
flags.DEFINE_enum("packing_mode", "full", ["full", "doc"], "mlm only: FULL- or DOC-SENTENCES.")
flags.DEFINE_float("short_seq_prob", 0.1, "Sentence pairs: share of shorter targets.")
flags.DEFINE_bool("random_next_sentence", False, "mlm_sop: ALBERT's random-document B for one-line chunks.")
flags.DEFINE_enum("invalid_utf8", "skip", ["skip", "error"], "Undecodable lines: skip (counted) or error.")


def main(argv):
    del argv
    paths = FLAGS.corpus_paths or pipelines.default_corpus()
    try:
        stats = corpus.corpus_stats(paths, raise_on_invalid=FLAGS.invalid_utf8 == "error")
        if stats.invalid_utf8_lines:
            print(f"skipping {stats.invalid_utf8_lines} line(s) that are not UTF-8 (first: {stats.first_invalid})")
        start = time.time()
        written, count = pipelines.write_static_examples(
            FLAGS.output_prefix, FLAGS.objective, corpus_paths=paths, tokenizer_kind=FLAGS.tokenizer_kind,
            vocab_path=FLAGS.vocab_path, seq_len=FLAGS.seq_len, mask_prob=FLAGS.mask_prob,
            max_predictions_per_seq=FLAGS.max_predictions_per_seq, dupe_factor=FLAGS.dupe_factor,
            num_shards=FLAGS.num_shards, seed=FLAGS.seed, mask_unit=FLAGS.mask_unit,
            packing_mode=FLAGS.packing_mode, short_seq_prob=FLAGS.short_seq_prob,
            random_next_sentence=FLAGS.random_next_sentence, invalid_utf8=FLAGS.invalid_utf8)
    except (ValueError, FileNotFoundError) as error:  # CorpusError, PipelineError, TokenizerError
        exit_with_error("create_pretraining_data.py", error)
    print(json.dumps({"examples": count, "files": written, "corpus_documents": stats.documents,
                      "corpus_lines": stats.lines, "seconds": round(time.time() - start, 1)}, indent=1))


if __name__ == "__main__":
    app.run(main)
