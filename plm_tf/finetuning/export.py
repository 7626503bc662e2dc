"""A fine-tuned classifier as a SavedModel that takes raw text.

The tokenizer (a `tf.Module` with its vocabulary tables) and `features.encode_texts` run inside the graph, so
serving packs text exactly as training did. Clients only need `import tensorflow_text` before loading (the
tokenizers use tf-text ops):

    import tensorflow as tf, tensorflow_text  # noqa: F401
    served = tf.saved_model.load(export_dir)
    served.signatures["serving_default"](text=tf.constant(["..."]))                       # single-text task
    served.signatures["serving_default"](text_a=tf.constant(["..."]), text_b=tf.constant(["..."]))  # pairs

Outputs of `serving_default` (B = batch):
    classification: logits float32 [B, C], probabilities float32 [B, C], label_id int32 [B],
                    label string [B] (the task's label names, e.g. "0"/"1" or "True"/"False"/"Neither")
    regression:     score float32 [B]
The loaded module also has the attributes `label_names` (a string [C] variable; empty for regression),
`seq_len` (an int32 scalar variable) and `is_pair` (a bool scalar variable), and the signatures
`encode` (text [B]) / `encode_pairs` (text_a, text_b [B]) → sequence_output float32 [B, T, H] and
sentence_embedding float32 [B, H] (the representation the classifier head reads), input_mask int32 [B, T].

The SavedModel also loads in TensorFlow Serving's TF1 loader with every variable initialised.

(`plm_tf.export` serves pretraining models — encoders, ELECTRA's replaced-token detector, masked LM — and has
no classifier head, so the fine-tuned classifier is exported here.)
"""
import json
import os

import tensorflow as tf

from plm_tf.finetuning import features as features_lib
from plm_tf.finetuning import model as model_lib
from plm_tf.training import checkpointing


class ClassifierServingModule(tf.Module):
    """Raw text → the fine-tuned classifier's outputs (see module docstring).

    Args:
        model: a built `ClassifierModel`.
        tokenizer: the tokenizer the model was fine-tuned with.
        label_names: class names (strings) in logit order; None for regression.
        seq_len: tokens per example, as in fine-tuning.
        is_pair: whether the task has two texts.
    """

    def __init__(self, model, tokenizer, label_names, seq_len, is_pair, name="classifier_serving"):
        super().__init__(name=name)
        # Track the tf.Variables under the Keras variables, not the Keras model: a Keras variable exports as a
        # second copy that TensorFlow Serving's (TF1) loader restores while the functions read the first, left
        # uninitialised (the lesson of plm_tf.export.serving, which does the same).
        self.model_variables = [variable.value for variable in model.variables]
        self._keras = _Untracked(model=model)
        self.tokenizer = tokenizer
        self._seq_len = int(seq_len)
        self.is_regression = label_names is None
        # Variables, not constants: a tf.Module keeps only trackables through tf.saved_model.save.
        self.label_names = tf.Variable(tf.constant(list(label_names or []), tf.string), trainable=False,
                                       name="label_names")
        self.seq_len = tf.Variable(self._seq_len, dtype=tf.int32, trainable=False, name="seq_len")
        self.is_pair = tf.Variable(bool(is_pair), trainable=False, name="is_pair")
        text = tf.TensorSpec([None], tf.string)
        if is_pair:
            self.serving_default = tf.function(self._classify_pairs, input_signature=[text, text])
        else:
            self.serving_default = tf.function(self._classify, input_signature=[text])
        self.encode = tf.function(self._encode, input_signature=[text])
        self.encode_pairs = tf.function(self._encode_pairs, input_signature=[text, text])

    def signatures(self):
        """{name: concrete function} for tf.saved_model.save."""
        return {"serving_default": self.serving_default.get_concrete_function(),
                "encode": self.encode.get_concrete_function(),
                "encode_pairs": self.encode_pairs.get_concrete_function()}

    def _encoder_outputs(self, features):
        model = self._keras.model
        encoded = model.encoder(features, training=False)
        return {"sequence_output": tf.cast(encoded["sequence_output"], tf.float32),
                "sentence_embedding": tf.cast(model.sentence_representation(encoded), tf.float32),
                "input_mask": features["input_mask"]}

    def _encode(self, text):
        return self._encoder_outputs(features_lib.encode_texts(self.tokenizer, text, None, self._seq_len))

    def _encode_pairs(self, text_a, text_b):
        return self._encoder_outputs(features_lib.encode_texts(self.tokenizer, text_a, text_b, self._seq_len))

    def _outputs(self, features):
        logits = tf.cast(self._keras.model(features, training=False), tf.float32)
        if self.is_regression:
            return {"score": logits[:, 0]}
        label_id = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1), "label_id": label_id,
                "label": tf.gather(self.label_names, label_id)}

    def _classify(self, text):
        return self._outputs(features_lib.encode_texts(self.tokenizer, text, None, self._seq_len))

    def _classify_pairs(self, text_a, text_b):
        return self._outputs(features_lib.encode_texts(self.tokenizer, text_a, text_b, self._seq_len))


class _Untracked:
    """Holds the Keras model without making it a SavedModel child (its variables are tracked explicitly)."""

    def __init__(self, **objects):
        self.__dict__.update(objects)


def export_classifier(model, tokenizer, label_names, seq_len, is_pair, export_dir):
    """Writes the SavedModel; returns `export_dir`."""
    from plm_tf.model_card import write_model_card

    module = ClassifierServingModule(model, tokenizer, label_names, seq_len, is_pair)
    tf.saved_model.save(module, export_dir, signatures=module.signatures())
    encoder = model.encoder
    kind = f"{len(label_names)}-class classifier" if label_names else "regressor"
    write_model_card(export_dir, {
        "title": f"Fine-tuned {kind} serving export (SavedModel)",
        "summary": "Raw text in (`text`, or `text_a` and `text_b` for pairs), logits, probabilities and the "
                   "label out (serving_default); encode / encode_pairs give the encoder's vectors. Load it after "
                   "`import tensorflow_text`.",
        "model": {"layers": encoder.num_layers, "hidden": encoder.hidden_size, "heads": encoder.num_heads,
                  "labels": list(label_names) if label_names else "regression score",
                  "sequence length": seq_len, "text pairs": bool(is_pair)},
        "vocab": {"tokenizer": tokenizer.kind, "size": tokenizer.vocab_size,
                  "lowercases": getattr(tokenizer, "lower_case", False)},
        "load": "python -m plm_tf.predict --saved_model=THIS_FOLDER \"a text\"",
    })
    return export_dir


def load_finetuned(model_dir):
    """(ClassifierModel with the best epoch's weights, tokenizer, task.json dict) of a fine-tuning run."""
    from plm_tf.convert.model_dir import TokenizerSpec

    with tf.io.gfile.GFile(os.path.join(model_dir, "task.json")) as f:
        info = json.load(f)
    best_dir = os.path.join(model_dir, "best")
    if not tf.io.gfile.isdir(best_dir) or not tf.io.gfile.listdir(best_dir):
        raise model_lib.CheckpointError(f"{model_dir}/best holds no checkpoint; run the fine-tuning first.")
    best = checkpointing.resolve_checkpoint(best_dir, model_lib.CheckpointError)  # damaged: one clear error
    encoder = model_lib.new_encoder(info["encoder_config"])
    model = model_lib.ClassifierModel(encoder, info["num_classes"], dropout_rate=info["dropout_rate"],
                                      name="classifier")
    model.build()
    tf.train.Checkpoint(model=model).restore(best).assert_existing_objects_matched().expect_partial()
    tokenizer = TokenizerSpec(info["tokenizer_kind"], info["vocab_path"], info.get("lower_case")).load()
    return model, tokenizer, info


def export_from_model_dir(model_dir, export_dir):
    """Exports the best classifier of a `python -m plm_tf.finetune` run (its model_dir)."""
    model, tokenizer, info = load_finetuned(model_dir)
    return export_classifier(model, tokenizer, info["label_names"], info["seq_len"], info["is_pair"], export_dir)
