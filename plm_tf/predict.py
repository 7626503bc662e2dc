"""`python -m plm_tf.predict --saved_model=DIR "some text" ["another text" ...]`: look at an export before serving.

For an ELECTRA export it prints, per text, every token with its probability of having been replaced (the
discriminator's sigmoid), the text's score (mean over its own tokens, specials excluded) and whether it was
truncated. `--pair` reads the texts two by two as (first, second) pairs. For an encoder export (RoBERTa,
ALBERT, BERT, a converted bare encoder) it prints the tokens and the first values of the sentence embedding,
except for single texts given to a masked-LM export (RoBERTa, BERT, ALBERT pretrained by `plm_tf.train`): there
every mask token of the text (`[MASK]`, RoBERTa `<mask>`) gets its `--top_k` most probable tokens with their
probabilities (the export's `fill_mask` signature).
For a fine-tuned classifier (`python -m plm_tf.export --checkpoint=FINETUNE_RUN`, or `plm_tf.finetune
--export_dir`) it prints the predicted label and the class probabilities (the score for regression).
"""
import sys

from absl import app, flags

from plm_tf.cli import exit_with_error

flags.DEFINE_string("saved_model", None, "a SavedModel written by `python -m plm_tf.export`.")
flags.DEFINE_boolean("pair", False, "treat the texts as consecutive (first, second) pairs.")
flags.DEFINE_integer("top_k", 5, "masked-LM exports: how many tokens to show per mask.")
flags.mark_flag_as_required("saved_model")
FLAGS = flags.FLAGS


def format_detection(outputs, index):
    """Lines for text `index` of a serving_default / serving_pairs answer (dict of numpy arrays)."""
    lines = []
    mask = outputs["input_mask"][index]
    for token, probability, real in zip(outputs["tokens"][index], outputs["replaced_probability"][index], mask):
        if real:
            lines.append(f"  {token.decode('utf-8', 'replace'):<20s} {probability:.3f}")
    truncated = " (truncated)" if outputs["truncated"][index] else ""
    lines.append(f"  score: {outputs['score'][index]:.4f}{truncated}")
    return lines


def format_encoding(outputs, index, values=4):
    """Lines for text `index` of an encode / encode_pairs answer (dict of numpy arrays)."""
    tokens = [t.decode("utf-8", "replace") for t, real in zip(outputs["tokens"][index], outputs["input_mask"][index])
              if real]
    embedding = outputs["sentence_embedding"][index]
    shown = ", ".join(f"{v:.4f}" for v in embedding[:values])
    truncated = " (truncated)" if outputs["truncated"][index] else ""
    return [f"  tokens: {' '.join(tokens)}{truncated}",
            f"  sentence_embedding [{embedding.shape[0]}]: [{shown}{', ...' if embedding.shape[0] > values else ''}]"]


def readable_token(token, kind):
    """A token string as text: byte-level BPE symbols (GPT-2's bytes_to_unicode, "Ġ" = space) back to the
    UTF-8 text they stand for (the word-start space dropped: "Ġcat" → "cat"); other kinds as they are."""
    token = token.decode("utf-8", "replace")
    if kind != "bpe":
        return token
    from plm_tf.data.tokenizers.byte_bpe import bytes_to_unicode

    to_byte = {char: byte for byte, char in bytes_to_unicode().items()}
    if not all(char in to_byte for char in token):  # a special token such as <mask>
        return token
    return bytes(to_byte[char] for char in token).decode("utf-8", "replace").strip()


def format_fill_mask(outputs, index, mask_token, kind="wordpiece"):
    """Lines for text `index` of a fill_mask answer (dict of numpy arrays): one line per mask, its top tokens
    with their probabilities (`kind`: the tokenizer kind, for `readable_token`)."""
    positions = [t for t, is_mask in enumerate(outputs["is_mask"][index]) if is_mask]
    truncated = " (truncated)" if outputs["truncated"][index] else ""
    if not positions:
        return [f"  no {mask_token} in the text{truncated}: write {mask_token} where a token should be predicted"]
    lines = []
    for number, t in enumerate(positions, 1):
        shown = "  ".join(f"{readable_token(token, kind)} {p:.3f}" for token, p in
                          zip(outputs["top_tokens"][index][t], outputs["top_probabilities"][index][t]))
        lines.append(f"  {mask_token} {number}: {shown}")
    if truncated:
        lines.append("  (truncated: masks beyond the export's max_seq_length are not predicted)")
    return lines


def format_classification(outputs, index, label_names):
    """Lines for text `index` of a fine-tuned classifier's serving_default answer (dict of numpy arrays)."""
    if "score" in outputs:
        return [f"  score: {outputs['score'][index]:.4f}"]
    probabilities = ", ".join(f"{name}: {p:.3f}" for name, p in zip(label_names, outputs["probabilities"][index]))
    return [f"  label: {outputs['label'][index].decode('utf-8')}  ({probabilities})"]


def _predict_classifier(loaded, texts, pair):
    import tensorflow as tf

    label_names = [name.decode("utf-8") for name in loaded.label_names.numpy()]
    is_pair = bool(loaded.is_pair.numpy())
    if is_pair != pair:
        raise ValueError("this classifier takes text pairs: pass --pair" if is_pair
                         else "this classifier takes single texts: drop --pair")
    if pair:
        if len(texts) % 2:
            raise ValueError(f"--pair needs an even number of texts, got {len(texts)}.")
        outputs = loaded.signatures["serving_default"](text_a=tf.constant(texts[0::2]), text_b=tf.constant(texts[1::2]))
        labels = [f"{a!r} / {b!r}" for a, b in zip(texts[0::2], texts[1::2])]
    else:
        outputs = loaded.signatures["serving_default"](text=tf.constant(texts))
        labels = [repr(t) for t in texts]
    outputs = {k: v.numpy() for k, v in outputs.items()}
    lines = []
    for i, label in enumerate(labels):
        lines.append(label)
        lines.extend(format_classification(outputs, i, label_names))
    return lines


def _predict_fill_mask(loaded, texts, top_k):
    import tensorflow as tf

    from plm_tf.export.serving import MASK_TOKENS

    kind = loaded.serving_config()["tokenizer_kind"].numpy().decode("utf-8")
    mask_token = MASK_TOKENS[kind]
    outputs = {k: v.numpy() for k, v in loaded.signatures["fill_mask"](
        text=tf.constant(texts), top_k=tf.constant(top_k, tf.int32)).items()}
    lines = []
    for i, text in enumerate(texts):
        lines.append(repr(text))
        lines.extend(format_fill_mask(outputs, i, mask_token, kind))
    return lines


def predict(saved_model, texts, pair=False, top_k=5):
    """Runs the export on `texts` and returns the printable lines (list of str)."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizers' ops before loading)

    if top_k < 1:
        raise ValueError(f"--top_k must be at least 1, got {top_k}.")
    loaded = tf.saved_model.load(saved_model)
    if hasattr(loaded, "label_names"):  # a fine-tuned classifier (plm_tf.finetuning.export)
        return _predict_classifier(loaded, texts, pair)
    if "fill_mask" in loaded.signatures and not pair:  # a masked-LM export
        return _predict_fill_mask(loaded, texts, top_k)
    electra = "serving_pairs" in loaded.signatures
    if pair:
        if len(texts) % 2:
            raise ValueError(f"--pair needs an even number of texts, got {len(texts)}.")
        inputs = {"text_a": tf.constant(texts[0::2]), "text_b": tf.constant(texts[1::2])}
        signature = loaded.signatures["serving_pairs" if electra else "encode_pairs"]
        labels = [f"{a!r} / {b!r}" for a, b in zip(texts[0::2], texts[1::2])]
    else:
        inputs = {"text": tf.constant(texts)}
        signature = loaded.signatures["serving_default" if electra else "encode"]
        labels = [repr(t) for t in texts]
    outputs = {k: v.numpy() for k, v in signature(**inputs).items()}
    lines = []
    for i, label in enumerate(labels):
        lines.append(label)
        lines.extend(format_detection(outputs, i) if electra else format_encoding(outputs, i))
    return lines


def main(argv):
    texts = argv[1:]
    if not texts:
        sys.exit('plm_tf.predict: give one or more texts, e.g. python -m plm_tf.predict --saved_model=DIR "a text"')
    try:
        lines = predict(FLAGS.saved_model, texts, FLAGS.pair, FLAGS.top_k)
    except (ValueError, OSError) as error:
        exit_with_error("plm_tf.predict", error)
    print("\n".join(lines))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
