"""Regenerates plm_tf/assets/: the default corpus, the three vocabularies built from it, and the email corpus.

    python scripts/build_default_assets.py [--source=../shared/data/corpora/austen.txt.gz]
                                           [--email_source=../shared/data/tasks/spam/train.tsv.gz]

Writes, deterministically:
  plm_tf/assets/corpus.txt.gz          Jane Austen's six novels (public domain), corpus format, gzip mtime 0
  plm_tf/assets/wordpiece_vocab.txt    uncased WordPiece, ~8000 tokens
  plm_tf/assets/sentencepiece.model    ALBERT-style unigram SentencePiece, 8000 pieces
  plm_tf/assets/bpe/vocab.json, bpe/merges.txt   RoBERTa-style byte-level BPE, 8000 tokens
  plm_tf/assets/email_corpus.txt.gz    the spam task's train-split email bodies (labels dropped), one
                                       sentence per line, one email per document, gzip mtime 0
"""
import argparse
import csv
import gzip
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import build_vocab  # noqa: E402  (scripts/build_vocab.py)

SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data")
DEFAULT_SOURCE = os.path.join(SHARED_DATA, "corpora", "austen.txt.gz")
# Only the train split: the dev and test emails that fine-tuning reports on are never pretrained on.
DEFAULT_EMAIL_SOURCE = os.path.join(SHARED_DATA, "tasks", "spam", "train.tsv.gz")
# A sentence ends at . ! or ? followed by whitespace (the corpus format wants a sentence or paragraph a line).
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
ASSETS = os.path.join(REPO, "plm_tf", "assets")
VOCAB_SIZE = 8000


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="austen.txt.gz from shared/data/corpora")
    parser.add_argument("--email_source", default=DEFAULT_EMAIL_SOURCE, help="train.tsv.gz of shared/data/tasks/spam")
    parser.add_argument("--vocab_size", type=int, default=VOCAB_SIZE)
    args = parser.parse_args(argv)
    for source in (args.source, args.email_source):
        if not os.path.exists(source):
            parser.exit(2, f"build_default_assets: error: source not found: {source}\n")
    os.makedirs(ASSETS, exist_ok=True)
    with gzip.open(args.source, "rb") as f:
        text = f.read()
    text.decode("utf-8")  # the corpus must be UTF-8
    corpus = os.path.join(ASSETS, "corpus.txt.gz")
    write_gzip(corpus, text)
    print(f"wrote {corpus}")
    email_corpus = os.path.join(ASSETS, "email_corpus.txt.gz")
    write_gzip(email_corpus, email_corpus_text(args.email_source).encode("utf-8"))
    print(f"wrote {email_corpus}")
    for kind, out in (("wordpiece", "wordpiece_vocab.txt"), ("sentencepiece", "sentencepiece.model"),
                      ("bpe", "bpe")):
        path = os.path.join(ASSETS, out)
        size = build_vocab.build_vocab(kind, [corpus], args.vocab_size, path)
        print(f"wrote {kind} vocabulary of {size} tokens to {path}")


def write_gzip(path, data):
    """Writes bytes gzipped with a fixed header (mtime 0, no file name), so the same input gives the same file."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9, filename="") as f:
        f.write(data)


def email_corpus_text(tsv_path):
    """The `sentence` column of a spam-task TSV (../shared/data README: tab-separated, a header, no quoting) in
    corpus format: each email a document, one sentence per line, a blank line after each email."""
    with gzip.open(tsv_path, "rt", encoding="utf-8", newline="") as f:
        header, *rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
    column = header.index("sentence")
    documents = []
    for row in rows:
        sentences = [s.strip() for s in SENTENCE_END.split(row[column]) if s.strip()]
        if sentences:
            documents.append("\n".join(sentences) + "\n\n")
    return "".join(documents)


if __name__ == "__main__":
    main()
