"""The tokenizer of a converted model: which kind, which vocabulary file, and whether it lowercases.

A released checkpoint ships its vocabulary in one of these forms (the first found wins):

    vocab.txt                     WordPiece (BERT, ELECTRA)
    spiece.model / 30k-clean.model   SentencePiece (ALBERT)
    vocab.json + merges.txt       byte-level BPE (RoBERTa)
    tokenizer.json only           Hugging Face `tokenizers` file: its WordPiece vocabulary is written out as
                                  vocab.txt, its byte-level BPE as vocab.json + merges.txt (GPT-2 format)

Casing (`lower_case`), first that applies: the `--do_lower_case` flag; HF `tokenizer_config.json`
`do_lower_case`; the `lowercase` of `tokenizer.json`'s normalizer; a TF1 config's `do_lower_case` key; the
google-research/bert rule for its released folder names (`tokenization.validate_case_matches_checkpoint`:
`cased_L-12_H-768_A-12` is cased, `uncased_L-12_H-768_A-12` is not); else the family's default (WordPiece and
SentencePiece lowercase, as BERT's / ALBERT's `do_lower_case=True`; byte-level BPE never does).

Special tokens: plm_tf's tokenizers look them up by string (`plm_tf.data.tokenizers`); a checkpoint whose
`special_tokens_map.json` / `tokenizer_config.json` names other strings is refused with the differing names.
"""
import json
import os

from plm_tf.convert.common import ConversionError, copy_vocab, read_json

TOKENIZER_KIND = {"bert": "wordpiece", "electra": "wordpiece", "albert": "sentencepiece", "roberta": "bpe"}
_MAIN_FILE = {"wordpiece": ("vocab.txt",), "sentencepiece": ("spiece.model", "30k-clean.model"), "bpe": ("vocab.json",)}
_SPECIALS = {
    "wordpiece": {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                  "mask_token": "[MASK]"},
    "sentencepiece": {"pad_token": "<pad>", "unk_token": "<unk>", "cls_token": "[CLS]", "sep_token": "[SEP]",
                      "mask_token": "[MASK]"},
    "bpe": {"pad_token": "<pad>", "unk_token": "<unk>", "cls_token": "<s>", "sep_token": "</s>",
            "mask_token": "<mask>"},
}
# google-research/bert tokenization.validate_case_matches_checkpoint.
_BERT_UNCASED = ("uncased_L-24_H-1024_A-16", "uncased_L-12_H-768_A-12", "multilingual_L-12_H-768_A-12",
                 "chinese_L-12_H-768_A-12")
_BERT_CASED = ("cased_L-12_H-768_A-12", "cased_L-24_H-1024_A-16", "multi_cased_L-12_H-768_A-12")


def _first_file(dirs, name):
    for directory in dirs:
        if directory and os.path.isfile(os.path.join(directory, name)):
            return os.path.join(directory, name)
    return None


def vocab_from_tokenizer_json(path, output_dir):
    """Writes the vocabulary of a `tokenizers` file: WordPiece → vocab.txt, byte-level BPE → vocab.json +
    merges.txt. Returns the names written. Raises ConversionError for another model type."""
    data = read_json(path)
    model = data.get("model") or {}
    kind = model.get("type")
    vocab = model.get("vocab")
    if kind == "WordPiece" and isinstance(vocab, dict):
        ordered = sorted(vocab.items(), key=lambda item: item[1])
        if [index for _, index in ordered] != list(range(len(ordered))):
            raise ConversionError(f"{path}: the WordPiece ids are not 0..{len(ordered) - 1} without gaps.")
        with open(os.path.join(output_dir, "vocab.txt"), "w", encoding="utf-8") as handle:
            handle.write("".join(token + "\n" for token, _ in ordered))
        return ["vocab.txt"]
    if kind == "BPE" and isinstance(vocab, dict):
        pre = json.dumps(data.get("pre_tokenizer"))
        if "ByteLevel" not in pre:
            raise ConversionError(f"{path}: a BPE without byte-level pre-tokenization is not RoBERTa's "
                                  f"byte-level BPE; plm_tf cannot read it.")
        merges = [merge if isinstance(merge, str) else " ".join(merge) for merge in model.get("merges", [])]
        with open(os.path.join(output_dir, "vocab.json"), "w", encoding="utf-8") as handle:
            json.dump(vocab, handle, ensure_ascii=False)
        with open(os.path.join(output_dir, "merges.txt"), "w", encoding="utf-8") as handle:
            handle.write("#version: 0.2\n" + "".join(merge + "\n" for merge in merges))
        return ["vocab.json", "merges.txt"]
    raise ConversionError(f"{path}: a {kind!r} tokenizer model; plm_tf reads WordPiece and byte-level BPE from "
                          f"tokenizer.json (a SentencePiece model must come as spiece.model).")


def _normalizer_lowercase(normalizer):
    if not isinstance(normalizer, dict):
        return None
    if normalizer.get("type") == "BertNormalizer":
        return bool(normalizer.get("lowercase", True))
    if normalizer.get("type") == "Lowercase":
        return True
    if normalizer.get("type") == "Sequence":
        found = [_normalizer_lowercase(item) for item in normalizer.get("normalizers", [])]
        return any(found) if any(value is not None for value in found) else None
    return None


def _lower_case(kind, dirs, do_lower_case, tf1_config, tf1_path):
    """(lower_case, where it came from)."""
    if do_lower_case is not None:
        return bool(do_lower_case), "--do_lower_case"
    path = _first_file(dirs, "tokenizer_config.json")
    if path and "do_lower_case" in read_json(path):
        return bool(read_json(path)["do_lower_case"]), path
    path = _first_file(dirs, "tokenizer.json")
    if path:
        found = _normalizer_lowercase(read_json(path).get("normalizer"))
        if found is not None:
            return found, f"{path} normalizer"
    if tf1_config and "do_lower_case" in tf1_config:
        return bool(tf1_config["do_lower_case"]), "the TF1 config's do_lower_case"
    if tf1_path:
        folder = os.path.basename(os.path.dirname(os.path.abspath(tf1_path)))
        if folder in _BERT_UNCASED or folder in _BERT_CASED:
            return folder in _BERT_UNCASED, f"google-research/bert's release name {folder}"
    return kind != "bpe", "the family default"


def _check_specials(kind, dirs):
    expected = _SPECIALS[kind]
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        path = _first_file(dirs, name)
        if not path:
            continue
        declared = read_json(path)
        differing = []
        for role, token in expected.items():
            value = declared.get(role)
            if isinstance(value, dict):  # AddedToken serialisation
                value = value.get("content")
            if isinstance(value, str) and value != token:
                differing.append(f"{role} {value!r} (plm_tf's {kind} uses {token!r})")
        if differing:
            raise ConversionError(f"{path}: special tokens plm_tf cannot use: {', '.join(differing)}.")


def tokenizer_settings(model_type, source_dirs, output_dir, do_lower_case=None, tf1_config=None, tf1_path=None):
    """Puts the source's vocabulary into `output_dir` and returns the tokenizer record of model.json.

    Args:
        model_type: the family (decides the tokenizer kind).
        source_dirs: folders to look in, first first (None entries are skipped).
        output_dir: the converted model folder.
        do_lower_case: True / False overrides every other source of the casing; None looks it up.
        tf1_config: a TF1 checkpoint's config dict (its `do_lower_case`, if any); tf1_path: its checkpoint path.

    Returns:
        {"kind", "vocab" (file name inside output_dir), "lower_case", "lower_case_from"}, or None when the
        source ships no vocabulary.

    Raises:
        ConversionError: a vocabulary of another kind, unusable special tokens, or a vocabulary that plm_tf's
            tokenizer refuses (the message says which).
    """
    from plm_tf.data.tokenizers import TokenizerError, load_tokenizer

    kind = TOKENIZER_KIND[model_type]
    dirs = [directory for directory in source_dirs if directory and os.path.isdir(directory)]
    os.makedirs(output_dir, exist_ok=True)
    files = copy_vocab(dirs, output_dir)
    if not files:
        path = _first_file(dirs, "tokenizer.json")
        if path is None:
            return None
        files = vocab_from_tokenizer_json(path, output_dir)
    main = [name for name in _MAIN_FILE[kind] if name in files]
    if not main:
        raise ConversionError(f"A {model_type} model needs a {kind} vocabulary ({' or '.join(_MAIN_FILE[kind])}), "
                              f"but the source ships {', '.join(files)}.")
    _check_specials(kind, dirs)
    lower_case, origin = _lower_case(kind, dirs, do_lower_case, tf1_config, tf1_path)
    if kind == "bpe" and lower_case:
        raise ConversionError(f"Byte-level BPE never lowercases, but {origin} asks for lowercasing.")
    try:
        load_tokenizer(kind, os.path.join(output_dir, main[0]), lower_case=lower_case)
    except (TokenizerError, FileNotFoundError) as error:
        raise ConversionError(f"The vocabulary cannot be used: {error}") from None
    return {"kind": kind, "vocab": main[0], "lower_case": lower_case, "lower_case_from": origin}
