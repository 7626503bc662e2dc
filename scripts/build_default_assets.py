"""Regenerates plm_tf/assets/: the default corpus and the three vocabularies built from it.

    python scripts/build_default_assets.py [--source=../shared/data/corpora/austen.txt.gz]

Writes, deterministically:
  plm_tf/assets/corpus.txt.gz          Jane Austen's six novels (public domain), corpus format, gzip mtime 0
  plm_tf/assets/wordpiece_vocab.txt    uncased WordPiece, ~8000 tokens
  plm_tf/assets/sentencepiece.model    ALBERT-style unigram SentencePiece, 8000 pieces
  plm_tf/assets/bpe/vocab.json, bpe/merges.txt   RoBERTa-style byte-level BPE, 8000 tokens
"""
import argparse
import gzip
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import build_vocab  # noqa: E402  (scripts/build_vocab.py)

DEFAULT_SOURCE = os.path.join(os.path.dirname(REPO), "shared", "data", "corpora", "austen.txt.gz")
ASSETS = os.path.join(REPO, "plm_tf", "assets")
VOCAB_SIZE = 8000


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="austen.txt.gz from shared/data/corpora")
    parser.add_argument("--vocab_size", type=int, default=VOCAB_SIZE)
    args = parser.parse_args(argv)
    if not os.path.exists(args.source):
        parser.exit(2, f"build_default_assets: error: source corpus not found: {args.source}\n")
    os.makedirs(ASSETS, exist_ok=True)
    with gzip.open(args.source, "rb") as f:
        text = f.read()
    text.decode("utf-8")  # the corpus must be UTF-8
    corpus = os.path.join(ASSETS, "corpus.txt.gz")
    with open(corpus, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9,
                                                  filename="") as f:
        f.write(text)
    print(f"wrote {corpus}")
    for kind, out in (("wordpiece", "wordpiece_vocab.txt"), ("sentencepiece", "sentencepiece.model"),
                      ("bpe", "bpe")):
        path = os.path.join(ASSETS, out)
        size = build_vocab.build_vocab(kind, [corpus], args.vocab_size, path)
        print(f"wrote {kind} vocabulary of {size} tokens to {path}")


if __name__ == "__main__":
    main()
