"""The last step of a journey, run by tests/journeys/test_journeys.py in a fresh process.

    python tests/journeys/check_journey.py --finetune_dir=RUN --saved_model=EXPORT --hf_dir=HF \\
        [--encoder_export=DIR --cased_text="Hello world"]

1. Loads the fine-tuned classifier's SavedModel (only `import tensorflow_text` first) and the Keras model of the
   same run (`plm_tf.finetuning.export.load_finetuned`), feeds both the run's dev texts, and requires equal
   logits (1e-5), equal labels, and the SavedModel's `label_names` / `seq_len` / `is_pair` attributes.
2. Loads HF_DIR (`python -m plm_tf.convert --from=plm_tf --to=hf` of the run) with `transformers.AutoModel` and
   requires its last hidden state to equal the Keras encoder's sequence output on real tokens (1e-4).
3. With --encoder_export (a `plm_tf.export` of the converted folder): `encode` runs, and the tokens of
   --cased_text are printed, so the test can see the casing the export applies.

Prints one JSON line with what it measured; any failed check raises (non-zero exit).
"""
import argparse
import json
import os
import sys

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--finetune_dir", required=True)
    parser.add_argument("--saved_model", required=True)
    parser.add_argument("--hf_dir", required=True)
    parser.add_argument("--encoder_export")
    parser.add_argument("--cased_text", default="Hello world")
    args = parser.parse_args()

    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the tokenizers' ops, before loading)

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    from plm_tf.finetuning import features, tasks
    from plm_tf.finetuning.export import load_finetuned

    report = {}
    served = tf.saved_model.load(args.saved_model)
    model, tokenizer, info = load_finetuned(args.finetune_dir)
    dev = tasks.load_task(info["task"]).splits["dev"]
    text_b = None if dev.text_b is None else tf.constant(dev.text_b)
    encoded = features.encode_texts(tokenizer, tf.constant(dev.text_a), text_b, info["seq_len"])
    keras_logits = model(encoded, training=False).numpy()
    inputs = {"text_a": tf.constant(dev.text_a), "text_b": text_b} if info["is_pair"] else {"text": tf.constant(dev.text_a)}
    answer = served.signatures["serving_default"](**inputs)
    np.testing.assert_allclose(answer["logits"].numpy(), keras_logits, atol=1e-5)
    labels = [label.decode() for label in answer["label"].numpy()]
    assert labels == [info["label_names"][i] for i in keras_logits.argmax(-1)], labels
    assert [n.decode() for n in served.label_names.numpy()] == info["label_names"]
    assert int(served.seq_len.numpy()) == info["seq_len"] and bool(served.is_pair.numpy()) == info["is_pair"]
    report["logits_max_diff"] = float(np.abs(answer["logits"].numpy() - keras_logits).max())
    report["examples"] = len(dev.text_a)

    import torch
    import transformers

    hf = transformers.AutoModel.from_pretrained(args.hf_dir).eval()
    mask = encoded["input_mask"].numpy()
    with torch.no_grad():
        hidden = hf(input_ids=torch.tensor(encoded["input_ids"].numpy(), dtype=torch.long),
                    attention_mask=torch.tensor(mask, dtype=torch.long),
                    token_type_ids=torch.tensor(encoded["segment_ids"].numpy(), dtype=torch.long)).last_hidden_state
    keras_hidden = model.encoder(encoded, training=False)["sequence_output"].numpy()
    difference = np.abs(hidden.numpy() - keras_hidden)[mask.astype(bool)].max()
    assert difference < 1e-4, difference
    report["hf_max_diff"] = float(difference)
    report["hf_class"] = type(hf).__name__

    if args.encoder_export:
        encoder = tf.saved_model.load(args.encoder_export)
        out = encoder.signatures["encode"](text=tf.constant([args.cased_text]))
        report["tokens"] = [t.decode() for t, m in zip(out["tokens"].numpy()[0], out["input_mask"].numpy()[0]) if m]
        report["encode_signatures"] = sorted(encoder.signatures)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
