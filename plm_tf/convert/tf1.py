"""Original Google TF1 checkpoints (google-research/bert, albert, electra) → plm_tf.

Read with `tf.train.load_checkpoint`; optimizer slots (`*/adam_m`, `*/adam_v`), `global_step` and ELECTRA's
`temperature` are skipped, and a TF-Hub `module/` prefix is removed. TF1 kernels are already [in, out], like
Keras; the only transposed tensor is the NSP/SOP `output_weights` [2, H].

Name map (S = `bert` for BERT and ALBERT, `electra` for the ELECTRA discriminator, `generator` for its
generator; ELECTRA's generator reads the embeddings from `electra/embeddings` unless the checkpoint has its own
`generator/embeddings`, i.e. was trained with untied embeddings):

| TF1 | plm_tf |
|---|---|
| S`/embeddings/{word,position,token_type}_embeddings` | `embeddings.{word,position,token_type}_embeddings` |
| S`/embeddings/LayerNorm/{gamma,beta}` | `embeddings.layer_norm` |
| `bert/encoder/embedding_hidden_mapping_in` (ALBERT), S`/embeddings_project` (ELECTRA) | `embedding_projection` |
| S`/encoder/layer_{i}/attention/self/{query,key,value}/{kernel,bias}` | `blocks[i].attention_sublayer.attention.{query,key,value}` |
| S`/encoder/layer_{i}/attention/output/dense`, `…/attention/output/LayerNorm` | `attention.output_dense`, `attention_sublayer.layer_norm` |
| S`/encoder/layer_{i}/intermediate/dense`, `…/output/dense`, `…/output/LayerNorm` | `feed_forward_sublayer.{intermediate,output_dense,layer_norm}` |
| `bert/encoder/transformer/group_{g}/inner_group_{k}/attention_1/self/{query,key,value}`, `…/attention_1/output/dense`, `…/LayerNorm` | `blocks[g·K+k]` attention (ALBERT) |
| `…/inner_group_{k}/ffn_1/intermediate/dense`, `…/ffn_1/intermediate/output/dense`, `…/LayerNorm_1` | `blocks[g·K+k].feed_forward_sublayer` |
| S`/pooler/dense` | `pooler` |
| `cls/predictions/transform/{dense,LayerNorm}`, `cls/predictions/output_bias` | `masked_lm_head.{dense,layer_norm,output_bias}` |
| `cls/seq_relationship/output_weights` [2, H] (transposed), `…/output_bias` | `sentence_head.classifier` (BERT NSP, ALBERT SOP) |
| `discriminator_predictions/dense`, `discriminator_predictions/dense_1` | `discriminator_head.{dense,prediction}` |
| `generator_predictions/{dense,LayerNorm}`, `generator_predictions/output_bias` | `generator_head.{dense,layer_norm,output_bias}` |

The configuration comes from `--config` (bert_config.json / albert_config.json), else from such a file next to
the checkpoint, else from the tensor shapes; shapes cannot tell the number of heads (then H / 64, the rule of
every released BERT and ELECTRA size, with a warning) nor ALBERT's depth (then a config file is required).
Activations follow the original code: BERT's and ALBERT's `gelu` is the tanh approximation, ELECTRA's the
exact erf form. LayerNorm ε is 1e-12 (tf.contrib.layers.layer_norm).
"""
import json
import logging
import os
import re

from plm_tf.convert.common import (
    ConversionError,
    ModelSpec,
    Slot,
    build_model,
    check_all_used,
    check_model_type,
    load_slots,
    resolve_checkpoint,
    write_plm_tf,
)

CONFIG_FILES = ("bert_config.json", "albert_config.json", "config.json")
_SKIPPED_PARTS = {"adam_m", "adam_v", "global_step", "temperature"}
_SKIPPED_SCOPES = ("AdamWeightDecayOptimizer", "LAMB", "lamb")
_ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "gelu_new": "gelu_tanh"}


def is_bookkeeping(name):
    """Optimizer slots and counters, which a model conversion leaves behind."""
    parts = name.split("/")
    return bool(_SKIPPED_PARTS.intersection(parts)) or parts[0].startswith(_SKIPPED_SCOPES)


def _dense(name, layer):
    return [Slot((f"{name}/kernel",), layer.kernel), Slot((f"{name}/bias",), layer.bias)]


def _norm(name, layer):
    return [Slot((f"{name}/gamma",), layer.gamma), Slot((f"{name}/beta",), layer.beta)]


def _attention_ffn(block, attention_scope, attention_out, attention_norm, intermediate, output, output_norm):
    attention = block.attention_sublayer.attention
    ffn = block.feed_forward_sublayer
    return [
        *_dense(f"{attention_scope}/query", attention.query),
        *_dense(f"{attention_scope}/key", attention.key),
        *_dense(f"{attention_scope}/value", attention.value),
        *_dense(attention_out, attention.output_dense),
        *_norm(attention_norm, block.attention_sublayer.layer_norm),
        *_dense(intermediate, ffn.intermediate),
        *_dense(output, ffn.output_dense),
        *_norm(output_norm, ffn.layer_norm),
    ]


def encoder_slots(encoder, family, scope, embeddings_scope=None):
    """Slots of a TransformerEncoder under TF1 scope `scope`; `embeddings_scope` None skips the embeddings
    (an ELECTRA generator sharing the discriminator's)."""
    slots = []
    if embeddings_scope is not None:
        embeddings = encoder.embeddings
        slots += [
            Slot((f"{embeddings_scope}/embeddings/word_embeddings",), embeddings.word_embeddings),
            Slot((f"{embeddings_scope}/embeddings/position_embeddings",), embeddings.position_embeddings),
            Slot((f"{embeddings_scope}/embeddings/token_type_embeddings",), embeddings.token_type_embeddings),
            *_norm(f"{embeddings_scope}/embeddings/LayerNorm", embeddings.layer_norm),
        ]
    if encoder.embedding_projection is not None:
        if family == "albert":
            slots += _dense(f"{scope}/encoder/embedding_hidden_mapping_in", encoder.embedding_projection)
        elif family == "electra":
            slots += _dense(f"{scope}/embeddings_project", encoder.embedding_projection)
        else:
            raise ConversionError(f"TF1 {family} has no embedding projection (embedding_size ≠ hidden_size).")
    if family == "albert":
        for g in range(encoder.num_hidden_groups):
            for k in range(encoder.inner_group_num):
                base = f"{scope}/encoder/transformer/group_{g}/inner_group_{k}"
                slots += _attention_ffn(
                    encoder.blocks[g * encoder.inner_group_num + k], f"{base}/attention_1/self",
                    f"{base}/attention_1/output/dense", f"{base}/LayerNorm", f"{base}/ffn_1/intermediate/dense",
                    f"{base}/ffn_1/intermediate/output/dense", f"{base}/LayerNorm_1",
                )
    else:
        for i, block in enumerate(encoder.blocks):
            base = f"{scope}/encoder/layer_{i}"
            slots += _attention_ffn(
                block, f"{base}/attention/self", f"{base}/attention/output/dense", f"{base}/attention/output/LayerNorm",
                f"{base}/intermediate/dense", f"{base}/output/dense", f"{base}/output/LayerNorm",
            )
    if encoder.pooler is not None:
        slots += _dense(f"{scope}/pooler/dense", encoder.pooler)
    return slots


def model_slots(model, spec):
    """All slots of a plm_tf model in TF1 names."""
    family = spec.model_type
    scope = "electra" if family == "electra" else "bert"
    if spec.objective is None:
        return encoder_slots(model, family, scope, scope)
    if spec.objective == "electra":
        head = model.discriminator_head
        slots = [*encoder_slots(model.discriminator, family, "electra", "electra"),
                 *_dense("discriminator_predictions/dense", head.dense),
                 *_dense("discriminator_predictions/dense_1", head.prediction)]
        if spec.has_generator:
            slots += encoder_slots(model.generator, family, "generator", None if spec.tie_embeddings else "generator")
            slots += [*_dense("generator_predictions/dense", model.generator_head.dense),
                      *_norm("generator_predictions/LayerNorm", model.generator_head.layer_norm),
                      Slot(("generator_predictions/output_bias",), model.generator_head.output_bias)]
        return slots
    head = model.masked_lm_head
    slots = [*encoder_slots(model.encoder, family, scope, scope),
             *_dense("cls/predictions/transform/dense", head.dense),
             *_norm("cls/predictions/transform/LayerNorm", head.layer_norm),
             Slot(("cls/predictions/output_bias",), head.output_bias)]
    if model.sentence_head is not None:
        classifier = model.sentence_head.classifier
        slots += [Slot(("cls/seq_relationship/output_weights",), classifier.kernel, True),
                  Slot(("cls/seq_relationship/output_bias",), classifier.bias)]
    return slots


def read_checkpoint(path):
    """(prefix, name → array) of a TF1 checkpoint, without optimizer slots and a TF-Hub `module/` prefix."""
    import tensorflow as tf

    prefix = resolve_checkpoint(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as error:
        raise ConversionError(f"{prefix}: cannot read the checkpoint ({error}).") from None
    names = [name for name in reader.get_variable_to_shape_map() if not is_bookkeeping(name)]
    strip = bool(names) and all(name.startswith("module/") for name in names)
    return prefix, {name[len("module/"):] if strip else name: reader.get_tensor(name) for name in names}


def _find_config(prefix, config_file):
    if config_file:
        candidates = [config_file]
    else:
        candidates = [os.path.join(os.path.dirname(prefix), name) for name in CONFIG_FILES]
    for candidate in candidates:
        if os.path.isfile(candidate):
            with open(candidate, encoding="utf-8") as handle:
                return json.load(handle), candidate
        if config_file:
            raise ConversionError(f"Config file {config_file} does not exist.")
    return {}, None


def _shape(tensors, name, source):
    if name not in tensors:
        raise ConversionError(f"{source}: missing tensor {name!r}.")
    return tensors[name].shape


def _activation(config, family, source):
    name = config.get("hidden_act", "gelu")
    if name == "gelu":  # the original codebases' `gelu`: tanh form in bert/albert, erf form in electra
        return "gelu_exact" if family == "electra" else "gelu_tanh"
    if name not in _ACTIVATIONS:
        raise ConversionError(f"{source}: hidden_act {name!r} has no plm_tf equivalent.")
    return _ACTIVATIONS[name]


def infer_spec(tensors, family, config, source):
    """The ModelSpec of a TF1 checkpoint from its config dict (may be empty) and its tensor shapes."""
    scope = "electra" if family == "electra" else "bert"
    vocab, embedding = _shape(tensors, f"{scope}/embeddings/word_embeddings", source)
    if family == "albert":
        base = "bert/encoder/transformer/group_0/inner_group_0"
        hidden = _shape(tensors, f"{base}/attention_1/self/query/kernel", source)[1]
        intermediate = _shape(tensors, f"{base}/ffn_1/intermediate/dense/kernel", source)[1]
        groups = len({m.group(1) for m in map(re.compile(r"bert/encoder/transformer/group_(\d+)/").match, tensors) if m})
        inner = len({m.group(1) for m in map(re.compile(r"bert/encoder/transformer/group_0/inner_group_(\d+)/").match,
                                             tensors) if m})
        if "num_hidden_layers" not in config:
            raise ConversionError(f"{source}: an ALBERT checkpoint does not record its depth (layers share weights); "
                                  f"pass --config=albert_config.json.")
        layers = config["num_hidden_layers"]
    else:
        hidden = _shape(tensors, f"{scope}/encoder/layer_0/attention/self/query/kernel", source)[1]
        intermediate = _shape(tensors, f"{scope}/encoder/layer_0/intermediate/dense/kernel", source)[1]
        layers = len({m.group(1) for m in map(re.compile(rf"{scope}/encoder/layer_(\d+)/").match, tensors) if m})
        groups = inner = 1
    if "num_attention_heads" not in config:
        logging.warning("%s: no config file; assuming %d attention heads (hidden size / 64).", source,
                        max(1, hidden // 64))
    default_dropout = 0.1
    encoder = dict(
        vocab_size=config.get("vocab_size", vocab),
        hidden_size=config.get("hidden_size", hidden),
        num_layers=config.get("num_hidden_layers", layers),
        num_heads=config.get("num_attention_heads", max(1, hidden // 64)),
        intermediate_size=config.get("intermediate_size", intermediate),
        embedding_size=config.get("embedding_size", embedding),
        max_position_embeddings=config.get("max_position_embeddings",
                                           _shape(tensors, f"{scope}/embeddings/position_embeddings", source)[0]),
        type_vocab_size=config.get("type_vocab_size",
                                   _shape(tensors, f"{scope}/embeddings/token_type_embeddings", source)[0]),
        position_offset=0,
        activation=_activation(config, family, source),
        layer_norm_epsilon=1e-12,
        dropout_rate=float(config.get("hidden_dropout_prob", default_dropout)),
        attention_dropout_rate=float(config.get("attention_probs_dropout_prob", default_dropout)),
        initializer_range=float(config.get("initializer_range", 0.02)),
        share="all" if family == "albert" else "none",
        num_hidden_groups=config.get("num_hidden_groups", groups) if family == "albert" else 1,
        inner_group_num=config.get("inner_group_num", inner) if family == "albert" else 1,
        use_pooler=f"{scope}/pooler/dense/kernel" in tensors,
        # ELECTRA's embeddings_project is a bare tf.layers.dense (Glorot uniform); ALBERT's is truncated normal.
        embedding_projection_initializer="glorot_uniform" if family == "electra" else "truncated_normal",
    )
    if family == "electra":
        if not any(name.startswith("discriminator_predictions/") for name in tensors):
            return ModelSpec(family, encoder, None)
        encoder["use_pooler"] = False
        spec = ModelSpec(family, encoder, "electra")
        generator_query = "generator/encoder/layer_0/attention/self/query/kernel"
        spec.has_generator = generator_query in tensors
        if spec.has_generator:
            spec.generator_hidden_fraction = tensors[generator_query].shape[1] / encoder["hidden_size"]
            spec.tie_embeddings = "generator/embeddings/word_embeddings" not in tensors
        return spec
    if not any(name.startswith("cls/predictions/") for name in tensors):
        return ModelSpec(family, encoder, None)
    if any(name.startswith("cls/seq_relationship/") for name in tensors):
        return ModelSpec(family, encoder, "mlm_sop" if family == "albert" else "mlm_nsp")
    return ModelSpec(family, encoder, "mlm")


def tf1_to_plm_tf(input_path, output_dir, model_type, config_file=None, do_lower_case=None):
    """Converts a Google TF1 checkpoint (prefix or folder) into a plm_tf model folder. Returns (model, spec).

    `do_lower_case` None takes the casing from the config's `do_lower_case`, else google-research/bert's release
    folder names, else the family default (plm_tf.convert.vocab)."""
    check_model_type(model_type)
    if model_type == "roberta":
        raise ConversionError("RoBERTa was released by fairseq, not as a TF1 checkpoint; convert the Hugging Face "
                              "model with --from=hf.")
    prefix, tensors = read_checkpoint(input_path)
    config, config_path = _find_config(prefix, config_file)
    spec = infer_spec(tensors, model_type, config, prefix)
    model = build_model(spec)
    used = load_slots(model_slots(model, spec), tensors, prefix)
    check_all_used(tensors, used, prefix)
    source = f"TF1 checkpoint {os.path.abspath(prefix)}" + (f" with {os.path.abspath(config_path)}" if config_path else "")
    write_plm_tf(model, spec, output_dir, source, vocab_dirs=(os.path.dirname(prefix),), do_lower_case=do_lower_case,
                 tf1_config=config, tf1_path=prefix)
    return model, spec
