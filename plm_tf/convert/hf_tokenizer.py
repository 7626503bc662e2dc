"""The tokenizer files of a Hugging Face export, so `AutoTokenizer.from_pretrained(DIR)` and `pipeline(...)` work.

`python -m plm_tf.convert --from=plm_tf --to=hf` calls `write_hf_tokenizer` for every folder it writes. What is
written, per plm_tf tokenizer kind (the files transformers' slow and fast tokenizer classes read):

    wordpiece (BERT, ELECTRA)   vocab.txt                   BertTokenizer / ElectraTokenizer
    sentencepiece (ALBERT)      spiece.model                AlbertTokenizer (keep_accents=False, as ALBERT)
    bpe (RoBERTa)               vocab.json + merges.txt     RobertaTokenizer (add_prefix_space=False, as fairseq)

plus tokenizer_config.json (tokenizer_class, do_lower_case from the model directory's recorded casing,
model_max_length = the position table minus its offset, the special tokens) and special_tokens_map.json. The
special-token strings are the ones plm_tf's tokenizers look up (`plm_tf.convert.vocab`), so the ids agree.
"""
import json
import os
import shutil

from plm_tf.convert.common import ConversionError
from plm_tf.convert.vocab import _SPECIALS as SPECIAL_TOKENS

TOKENIZER_CLASS = {"bert": "BertTokenizer", "electra": "ElectraTokenizer", "albert": "AlbertTokenizer",
                   "roberta": "RobertaTokenizer"}
# The extra special tokens of the HF classes beyond the five roles plm_tf uses: RoBERTa's bos/eos are <s>/</s>
# (transformers RobertaTokenizer), ALBERT's are [CLS]/[SEP] (AlbertTokenizer).
_EXTRA_SPECIALS = {"bpe": {"bos_token": "<s>", "eos_token": "</s>"},
                   "sentencepiece": {"bos_token": "[CLS]", "eos_token": "[SEP]"}}


def tokenizer_of(folder, objective):
    """The TokenizerSpec of the plm_tf model at `folder` (the checkpoint folder `read_plm_tf` returned).

    A converted folder (model.json) or fine-tuning run (task.json) records it; for a trainer run it is the
    gin configuration `read_plm_tf` has just parsed (`pretrain.tokenizer_kind`, `pretrain.vocab_path`, else the
    objective's default tokenizer and plm_tf's embedded vocabulary). None when the model has no vocabulary.
    """
    from plm_tf.convert import model_dir

    if model_dir.is_model_dir(folder):
        return model_dir.open_model_dir(folder, ConversionError).tokenizer
    from plm_tf.data.pipelines import DEFAULT_TOKENIZER
    from plm_tf.gin_config import query_or_none

    kind = query_or_none("pretrain.tokenizer_kind") or DEFAULT_TOKENIZER[objective]
    return model_dir.TokenizerSpec(kind, query_or_none("pretrain.vocab_path"))


def write_hf_tokenizer(directory, model_type, encoder_config, tokenizer):
    """Writes the tokenizer files of the module docstring into `directory`.

    Args:
        directory: the HF export folder (config.json already written).
        model_type: "bert", "electra", "albert" or "roberta".
        encoder_config: the TransformerEncoder kwargs (vocab_size, max_position_embeddings, position_offset).
        tokenizer: a `plm_tf.convert.model_dir.TokenizerSpec` (vocab None = plm_tf's embedded vocabulary).

    Returns:
        The list of file names written; [] (with a warning naming both sizes) when the vocabulary's size differs
        from the model's, as for a trainer run whose gin file names no vocabulary that fits: the weights are
        still exported, without a tokenizer.
    """
    from absl import logging

    loaded = tokenizer.load()
    if loaded.vocab_size != encoder_config["vocab_size"]:
        logging.warning("No tokenizer files written to %s: the vocabulary %s has %d tokens but the model's "
                        "vocab_size is %d.", directory, loaded.vocab_path, loaded.vocab_size,
                        encoder_config["vocab_size"])
        return []
    kind = loaded.kind
    source = loaded.vocab_path
    if kind == "wordpiece":
        files = {"vocab.txt": source}
    elif kind == "sentencepiece":
        files = {"spiece.model": source}
    else:  # byte-level BPE: vocab_path is the folder holding vocab.json + merges.txt
        folder = source if os.path.isdir(source) else os.path.dirname(source)
        files = {name: os.path.join(folder, name) for name in ("vocab.json", "merges.txt")}
    for name, path in files.items():
        target = os.path.join(directory, name)
        if not (os.path.exists(target) and os.path.samefile(path, target)):
            shutil.copyfile(path, target)
    specials = dict(SPECIAL_TOKENS[kind], **_EXTRA_SPECIALS.get(kind, {}))
    config = dict(specials, tokenizer_class=TOKENIZER_CLASS[model_type],
                  model_max_length=encoder_config["max_position_embeddings"] - encoder_config["position_offset"])
    if kind == "bpe":
        config["add_prefix_space"] = False
    else:
        config["do_lower_case"] = bool(loaded.lower_case)
    if kind == "sentencepiece":
        config.update(keep_accents=False, remove_space=True)
    for name, content in (("tokenizer_config.json", config), ("special_tokens_map.json", specials)):
        with open(os.path.join(directory, name), "w", encoding="utf-8") as handle:
            json.dump(content, handle, indent=2, sort_keys=True)
            handle.write("\n")
    return sorted(list(files) + ["special_tokens_map.json", "tokenizer_config.json"])
