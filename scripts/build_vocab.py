"""Builds a WordPiece, SentencePiece or byte-level BPE vocabulary from a text corpus.

    python scripts/build_vocab.py --kind=wordpiece --input=a.txt.gz,b.txt --vocab_size=8000 --output=vocab.txt
    python scripts/build_vocab.py --kind=sentencepiece ... --output=sp.model
    python scripts/build_vocab.py --kind=bpe ... --output=bpe_dir        # writes vocab.json + merges.txt

Input: the corpus format (one sentence or paragraph per line, a blank line between documents), plain or
gzip (by the .gz suffix). Blank lines are skipped. Layouts, all with fixed special tokens:
  wordpiece      [PAD] [UNK] [CLS] [SEP] [MASK] first, then tensorflow_text's bert_vocab_from_dataset
                 (uncased BERT normalisation), as google-research/bert's uncased vocab;
  sentencepiece  unigram model, <pad>=0 <unk>=1 [CLS]=2 [SEP]=3 [MASK]=4, trained on text passed through
                 ALBERT's preprocess_text (lowercase, accents stripped), as google-research/albert;
  bpe            Hugging Face `tokenizers` byte-level BPE written as GPT-2 vocab.json + merges.txt with
                 <s>=0 <pad>=1 </s>=2 <unk>=3 and <mask> as the last id, as fairseq's RoBERTa dictionary.
The same input gives the same files (single-threaded SentencePiece training, ordered JSON).
"""
import argparse
import gzip
import io
import json
import os
import sys

WORDPIECE_RESERVED = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
BPE_LEADING = ["<s>", "<pad>", "</s>", "<unk>"]
KINDS = ("wordpiece", "sentencepiece", "bpe")


class BuildVocabError(ValueError):
    """Bad arguments or input for build_vocab."""


def read_lines(paths):
    """Yields the non-blank lines (without the newline) of plain or .gz UTF-8 files, in order."""
    for path in paths:
        if not os.path.exists(path):
            raise FileNotFoundError(f"corpus file not found: {path}")
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                if line.strip():
                    yield line


def build_wordpiece(paths, vocab_size, output):
    import tensorflow as tf
    from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset as bvfd

    lines = list(read_lines(paths))
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(lines, tf.string)).batch(1024)
    vocab = bvfd.bert_vocab_from_dataset(
        dataset, vocab_size=vocab_size, reserved_tokens=WORDPIECE_RESERVED,
        bert_tokenizer_params={"lower_case": True},
        # A word must occur this often to be kept whole (tf-text default 10 caps a small corpus at ~5000).
        learn_params={"lower_thresh": 2})
    with open(output, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(tok + "\n" for tok in vocab))
    return len(vocab)


def build_sentencepiece(paths, vocab_size, output):
    import sentencepiece as spm

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from plm_tf.data.tokenizers.sentencepiece_tokenizer import albert_preprocess_text

    lines = [albert_preprocess_text(line) for line in read_lines(paths)]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, model_type="unigram", vocab_size=vocab_size,
        pad_id=0, unk_id=1, bos_id=-1, eos_id=-1, control_symbols=["[CLS]", "[SEP]", "[MASK]"],
        character_coverage=0.99995, input_sentence_size=0, shuffle_input_sentence=False,
        max_sentence_length=1 << 16, num_threads=1, minloglevel=2)
    with open(output, "wb") as f:
        f.write(model.getvalue())
    return vocab_size


def build_bpe(paths, vocab_size, output):
    try:
        from tokenizers import ByteLevelBPETokenizer
    except ImportError:
        raise BuildVocabError(
            "--kind=bpe trains with Hugging Face tokenizers, which is not installed: "
            "pip install 'tokenizers>=0.19,<1' (or pip install -e .[test])") from None
    tok = ByteLevelBPETokenizer(add_prefix_space=False)
    tok.train_from_iterator(read_lines(paths), vocab_size=vocab_size - 1, min_frequency=2,
                            special_tokens=BPE_LEADING, show_progress=False)
    model = json.loads(tok.to_str())["model"]
    vocab = dict(sorted(model["vocab"].items(), key=lambda kv: kv[1]))
    vocab["<mask>"] = len(vocab)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    os.makedirs(output, exist_ok=True)
    with open(os.path.join(output, "vocab.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(vocab, ensure_ascii=False) + "\n")
    with open(os.path.join(output, "merges.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write("#version: 0.2\n" + "".join(m + "\n" for m in merges))
    return len(vocab)


def build_vocab(kind, inputs, vocab_size, output):
    """Builds the vocabulary; returns its size. `inputs` is a list of paths."""
    if kind not in KINDS:
        raise BuildVocabError(f"unknown --kind {kind!r}; expected one of {', '.join(KINDS)}")
    if vocab_size < 300:
        raise BuildVocabError(f"--vocab_size={vocab_size} is too small (byte-level BPE alone needs 261)")
    if not inputs:
        raise BuildVocabError("--input needs at least one corpus file")
    builder = {"wordpiece": build_wordpiece, "sentencepiece": build_sentencepiece, "bpe": build_bpe}[kind]
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    if not any(True for _ in read_lines(inputs)):
        raise BuildVocabError(f"the corpus {', '.join(inputs)} has no text")
    return builder(inputs, vocab_size, output)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", required=True, choices=KINDS)
    parser.add_argument("--input", required=True, help="comma-separated corpus files (plain or .gz)")
    parser.add_argument("--vocab_size", required=True, type=int)
    parser.add_argument("--output", required=True, help="vocab.txt / .model file, or a directory for bpe")
    args = parser.parse_args(argv)
    try:
        size = build_vocab(args.kind, [p for p in args.input.split(",") if p], args.vocab_size, args.output)
    except (BuildVocabError, FileNotFoundError) as e:
        parser.exit(2, f"build_vocab: error: {e}\n")
    print(f"wrote {args.kind} vocabulary of {size} tokens to {args.output}")


if __name__ == "__main__":
    main()
