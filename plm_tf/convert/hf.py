"""Hugging Face transformers (PyTorch, safetensors) ⇄ plm_tf, for BERT, RoBERTa, ALBERT and ELECTRA.

Reads `config.json` and `*.safetensors` only (never pickled `pytorch_model.bin`); writes `config.json` and
`model.safetensors` that `transformers` loads. Neither direction needs torch or transformers installed.

Name map (P = "bert.", "roberta.", "albert.", "electra.", or "" for a bare `*Model` checkpoint; every
`nn.Linear` weight is transposed to a Keras kernel; LayerNorm weight/bias ↔ gamma/beta):

| HF | plm_tf |
|---|---|
| P`embeddings.{word,position,token_type}_embeddings.weight` | `embeddings.{word,position,token_type}_embeddings` |
| P`embeddings.LayerNorm` | `embeddings.layer_norm` |
| P`embeddings_project` (ELECTRA), P`encoder.embedding_hidden_mapping_in` (ALBERT) | `embedding_projection` |
| P`encoder.layer.{i}.attention.self.{query,key,value}` | `blocks[i].attention_sublayer.attention.{query,key,value}` |
| P`encoder.layer.{i}.attention.output.dense` / `.LayerNorm` | `….attention.output_dense` / `attention_sublayer.layer_norm` |
| P`encoder.layer.{i}.intermediate.dense`, `.output.dense`, `.output.LayerNorm` | `feed_forward_sublayer.{intermediate,output_dense,layer_norm}` |
| P`encoder.albert_layer_groups.{g}.albert_layers.{k}.attention.{query,key,value,dense,LayerNorm}` | `blocks[g·K+k]` attention (as above) |
| … `.ffn`, `.ffn_output`, `.full_layer_layer_norm` | `feed_forward_sublayer.{intermediate,output_dense,layer_norm}` |
| P`pooler.dense` (BERT, RoBERTa), P`pooler` (ALBERT) | `pooler` |
| `cls.predictions.transform.{dense,LayerNorm}`, `cls.predictions.bias` | `masked_lm_head.{dense,layer_norm,output_bias}` |
| `lm_head.{dense,layer_norm,bias}` (RoBERTa), `predictions.{dense,LayerNorm,bias}` (ALBERT) | `masked_lm_head` |
| `cls.seq_relationship` (BERT NSP), `sop_classifier.classifier` (ALBERT SOP) | `sentence_head.classifier` |
| `discriminator_predictions.{dense,dense_prediction}` | `discriminator_head.{dense,prediction}` |
| generator: `generator_predictions.{dense,LayerNorm}`, `generator_lm_head.bias` | `generator_head.{dense,layer_norm,output_bias}` |

The output layers' weights (`*.decoder.weight`, `generator_lm_head.weight`) are the word table in both
libraries; when a file carries them they must equal it. Which plm_tf model is built follows from the heads
present: BERT `*ForPreTraining` → MaskedLMPretrainer("mlm_nsp"), `*ForMaskedLM` → "mlm", ALBERT
`AlbertForPreTraining` → "mlm_sop", ELECTRA `ElectraForPreTraining` (+ `--generator_input` with the
`ElectraForMaskedLM` generator) → ElectraPretrainer, a lone ELECTRA generator → MaskedLMPretrainer("mlm"),
and a checkpoint without heads (`BertModel`, ...) → a bare TransformerEncoder.
Out of plm_tf, a fine-tuning run's ClassifierModel becomes `*ForSequenceClassification` (`classifier_to_hf`,
name map `_CLASSIFIER_HEAD`: BERT / ALBERT `classifier`, RoBERTa `classifier.{dense,out_proj}`); ELECTRA's head
has no HF form.

Model details that the conversion carries: ALBERT's groups (blocks[g·K+k]) and its E→H mapping, which HF
applies always (an ALBERT with E = H exports an identity mapping; one that is not the identity cannot be
imported); RoBERTa's positions start at padding_idx + 1 (`position_offset` = pad_token_id + 1, exact for
sequences without leading padding, which is how both libraries are fed); `hidden_act` "gelu" is the exact
(erf) GELU in HF and "gelu_new" / "gelu_pytorch_tanh" the tanh form; RoBERTa's LM head and ELECTRA's
generator head use the exact GELU whatever `hidden_act` says, so plm_tf models with another activation cannot
be expressed there. The ELECTRA generator must be what plm_tf derives from the discriminator
(`configs.generator_config`: intermediate 4·hidden, heads max(1, hidden // 64), same depth and E).
"""
import glob
import json
import os

import numpy as np

from plm_tf.convert.common import (
    ConversionError,
    ModelSpec,
    Slot,
    build_model,
    check_all_used,
    check_model_type,
    copy_vocab,
    export_slots,
    load_slots,
    write_plm_tf,
)

PREFIX = {"bert": "bert.", "roberta": "roberta.", "albert": "albert.", "electra": "electra."}
ACTIVATION_FROM_HF = {
    "gelu": "gelu_exact",
    "gelu_python": "gelu_exact",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "relu": "relu",
    "tanh": "tanh",
    "silu": "silu",
    "swish": "silu",
}
ACTIVATION_TO_HF = {"gelu_exact": "gelu", "gelu_tanh": "gelu_new", "relu": "relu", "tanh": "tanh", "silu": "silu"}
# HF config class defaults for keys a config.json may leave out.
_DEFAULTS = {
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-12,
    "position_embedding_type": "absolute",
}
_FAMILY_DEFAULTS = {
    "roberta": {"pad_token_id": 1},
    "albert": {"embedding_size": 128, "num_hidden_groups": 1, "inner_group_num": 1, "hidden_act": "gelu_new",
               "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
    "electra": {"embedding_size": 128},
}
_ARCHITECTURES = {
    ("bert", None): "BertModel", ("bert", "mlm"): "BertForMaskedLM", ("bert", "mlm_nsp"): "BertForPreTraining",
    ("roberta", None): "RobertaModel", ("roberta", "mlm"): "RobertaForMaskedLM",
    ("albert", None): "AlbertModel", ("albert", "mlm"): "AlbertForMaskedLM", ("albert", "mlm_sop"): "AlbertForPreTraining",
    ("electra", None): "ElectraModel", ("electra", "mlm"): "ElectraForMaskedLM",
    ("electra", "electra"): "ElectraForPreTraining",
}
_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")


# ---------------------------------------------------------------------------------------------- name maps


def _dense(name, layer):
    return [Slot((f"{name}.weight",), layer.kernel, True), Slot((f"{name}.bias",), layer.bias)]


def _norm(name, layer):
    return [Slot((f"{name}.weight",), layer.gamma), Slot((f"{name}.bias",), layer.beta)]


def _block_slots(block, name, family):
    attention = block.attention_sublayer.attention
    ffn = block.feed_forward_sublayer
    if family == "albert":
        return [
            *_dense(f"{name}.attention.query", attention.query),
            *_dense(f"{name}.attention.key", attention.key),
            *_dense(f"{name}.attention.value", attention.value),
            *_dense(f"{name}.attention.dense", attention.output_dense),
            *_norm(f"{name}.attention.LayerNorm", block.attention_sublayer.layer_norm),
            *_dense(f"{name}.ffn", ffn.intermediate),
            *_dense(f"{name}.ffn_output", ffn.output_dense),
            *_norm(f"{name}.full_layer_layer_norm", ffn.layer_norm),
        ]
    return [
        *_dense(f"{name}.attention.self.query", attention.query),
        *_dense(f"{name}.attention.self.key", attention.key),
        *_dense(f"{name}.attention.self.value", attention.value),
        *_dense(f"{name}.attention.output.dense", attention.output_dense),
        *_norm(f"{name}.attention.output.LayerNorm", block.attention_sublayer.layer_norm),
        *_dense(f"{name}.intermediate.dense", ffn.intermediate),
        *_dense(f"{name}.output.dense", ffn.output_dense),
        *_norm(f"{name}.output.LayerNorm", ffn.layer_norm),
    ]


def encoder_slots(encoder, family, prefix, tied_word_names=(), with_embeddings=True):
    """Slots of a TransformerEncoder under HF prefix `prefix` ("bert.", ... or "")."""
    slots = []
    if with_embeddings:
        embeddings = encoder.embeddings
        slots += [
            Slot((f"{prefix}embeddings.word_embeddings.weight", *tied_word_names), embeddings.word_embeddings),
            Slot((f"{prefix}embeddings.position_embeddings.weight",), embeddings.position_embeddings),
            Slot((f"{prefix}embeddings.token_type_embeddings.weight",), embeddings.token_type_embeddings),
            *_norm(f"{prefix}embeddings.LayerNorm", embeddings.layer_norm),
        ]
    if encoder.embedding_projection is not None:
        if family == "albert":
            slots += _dense(f"{prefix}encoder.embedding_hidden_mapping_in", encoder.embedding_projection)
        elif family == "electra":
            slots += _dense(f"{prefix}embeddings_project", encoder.embedding_projection)
        else:
            raise ConversionError(
                f"HF {family} has no embedding projection: embedding_size ({encoder.embedding_size}) must equal "
                f"hidden_size ({encoder.hidden_size})."
            )
    if family == "albert":
        for g in range(encoder.num_hidden_groups):
            for k in range(encoder.inner_group_num):
                block = encoder.blocks[g * encoder.inner_group_num + k]
                slots += _block_slots(block, f"{prefix}encoder.albert_layer_groups.{g}.albert_layers.{k}", family)
    else:
        for i, block in enumerate(encoder.blocks):
            slots += _block_slots(block, f"{prefix}encoder.layer.{i}", family)
    if encoder.pooler is not None:
        if family == "electra":
            raise ConversionError("HF ELECTRA has no pooler: set encoder_config.use_pooler = False.")
        slots += _dense(f"{prefix}pooler" if family == "albert" else f"{prefix}pooler.dense", encoder.pooler)
    return slots


def _masked_lm_slots(head, family):
    if family == "bert":
        return [*_dense("cls.predictions.transform.dense", head.dense),
                *_norm("cls.predictions.transform.LayerNorm", head.layer_norm),
                Slot(("cls.predictions.bias", "cls.predictions.decoder.bias"), head.output_bias)]
    if family == "roberta":
        return [*_dense("lm_head.dense", head.dense), *_norm("lm_head.layer_norm", head.layer_norm),
                Slot(("lm_head.bias", "lm_head.decoder.bias"), head.output_bias)]
    if family == "albert":
        return [*_dense("predictions.dense", head.dense), *_norm("predictions.LayerNorm", head.layer_norm),
                Slot(("predictions.bias", "predictions.decoder.bias"), head.output_bias)]
    return [*_dense("generator_predictions.dense", head.dense),
            *_norm("generator_predictions.LayerNorm", head.layer_norm),
            Slot(("generator_lm_head.bias",), head.output_bias)]


_DECODER_WEIGHT = {
    "bert": "cls.predictions.decoder.weight",
    "roberta": "lm_head.decoder.weight",
    "albert": "predictions.decoder.weight",
    "electra": "generator_lm_head.weight",
}
_SENTENCE_HEAD = {"bert": ("mlm_nsp", "cls.seq_relationship"), "albert": ("mlm_sop", "sop_classifier.classifier")}


def model_slots(model, spec, part="main", bare_prefix=""):
    """All slots of a plm_tf model in HF names. ELECTRA pretraining: `part` "main" is the discriminator
    (ElectraForPreTraining), "generator" the generator (ElectraForMaskedLM). A bare encoder's names start
    with `bare_prefix` ("" as `BertModel` saves them, or the family prefix)."""
    family, objective = spec.model_type, spec.objective
    if objective is None:
        return encoder_slots(model, family, bare_prefix)
    if objective == "electra":
        if part == "generator":
            return [*encoder_slots(model.generator, family, "electra.", (_DECODER_WEIGHT[family],)),
                    *_masked_lm_slots(model.generator_head, family)]
        return [*encoder_slots(model.discriminator, family, "electra."),
                *_dense("discriminator_predictions.dense", model.discriminator_head.dense),
                *_dense("discriminator_predictions.dense_prediction", model.discriminator_head.prediction)]
    if (family, objective) not in _ARCHITECTURES:
        raise ConversionError(f"HF {family} has no model for the {objective!r} objective (no such head).")
    slots = [*encoder_slots(model.encoder, family, PREFIX[family], (_DECODER_WEIGHT[family],)),
             *_masked_lm_slots(model.masked_lm_head, family)]
    if model.sentence_head is not None:
        slots += _dense(_SENTENCE_HEAD[family][1], model.sentence_head.classifier)
    return slots


# ---------------------------------------------------------------------------------------------- configs


def _get(config, key, family, source):
    if key in config:
        return config[key]
    defaults = {**_DEFAULTS, **_FAMILY_DEFAULTS.get(family, {})}
    if key in defaults:
        return defaults[key]
    raise ConversionError(f"{source}: config.json has no {key!r}.")


def activation_from_hf(name, source):
    if name not in ACTIVATION_FROM_HF:
        raise ConversionError(f"{source}: hidden_act {name!r} has no plm_tf equivalent ({sorted(ACTIVATION_FROM_HF)}).")
    return ACTIVATION_FROM_HF[name]


def encoder_config_from_hf(config, family, use_pooler, source="config.json"):
    """`TransformerEncoder` keyword arguments equivalent to an HF config dict."""
    get = lambda key: _get(config, key, family, source)  # noqa: E731
    if get("position_embedding_type") != "absolute":
        raise ConversionError(f"{source}: position_embedding_type {get('position_embedding_type')!r} is not "
                              f"supported; plm_tf has absolute positions only.")
    hidden = get("hidden_size")
    embedding_size = get("embedding_size") if family in ("albert", "electra") else hidden
    encoder = dict(
        vocab_size=get("vocab_size"),
        hidden_size=hidden,
        num_layers=get("num_hidden_layers"),
        num_heads=get("num_attention_heads"),
        intermediate_size=get("intermediate_size"),
        embedding_size=embedding_size,
        max_position_embeddings=get("max_position_embeddings"),
        type_vocab_size=get("type_vocab_size"),
        position_offset=get("pad_token_id") + 1 if family == "roberta" else 0,
        activation=activation_from_hf(get("hidden_act"), source),
        layer_norm_epsilon=float(get("layer_norm_eps")),
        dropout_rate=float(get("hidden_dropout_prob")),
        attention_dropout_rate=float(get("attention_probs_dropout_prob")),
        initializer_range=float(get("initializer_range")),
        share="none",
        num_hidden_groups=1,
        inner_group_num=1,
        use_pooler=use_pooler,
        # ELECTRA's embeddings_project is a bare tf.layers.dense (Glorot uniform); ALBERT's is truncated normal.
        embedding_projection_initializer="glorot_uniform" if family == "electra" else "truncated_normal",
    )
    if family == "albert":
        groups, inner = get("num_hidden_groups"), get("inner_group_num")
        layers = encoder["num_layers"]
        hf_groups = [int(i / (layers / groups)) for i in range(layers)]
        plm_groups = [int(i / layers * groups) for i in range(layers)]
        if hf_groups != plm_groups:
            raise ConversionError(f"{source}: {layers} layers in {groups} groups are assigned to groups differently "
                                  f"by HF ({hf_groups}) and plm_tf ({plm_groups}).")
        encoder.update(share="all", num_hidden_groups=groups, inner_group_num=inner)
    return encoder


def hf_config(encoder, family, architecture):
    """An HF config.json dict for plm_tf `encoder` keyword arguments."""
    if encoder["activation"] not in ACTIVATION_TO_HF:
        raise ConversionError(f"plm_tf activation {encoder['activation']!r} has no HF hidden_act.")
    expected_share = "all" if family == "albert" else "none"
    if encoder["share"] != expected_share:
        raise ConversionError(f"HF {family} cannot express share={encoder['share']!r} (needs {expected_share!r}).")
    if (encoder["position_offset"] != 0) != (family == "roberta"):
        raise ConversionError(
            f"position_offset={encoder['position_offset']} does not fit HF {family} "
            f"({'pad_token_id + 1, at least 1' if family == 'roberta' else '0'})."
        )
    config = {
        "architectures": [architecture],
        "model_type": family,
        "vocab_size": encoder["vocab_size"],
        "hidden_size": encoder["hidden_size"],
        "num_hidden_layers": encoder["num_layers"],
        "num_attention_heads": encoder["num_heads"],
        "intermediate_size": encoder["intermediate_size"],
        "hidden_act": ACTIVATION_TO_HF[encoder["activation"]],
        "hidden_dropout_prob": encoder["dropout_rate"],
        "attention_probs_dropout_prob": encoder["attention_dropout_rate"],
        "max_position_embeddings": encoder["max_position_embeddings"],
        "type_vocab_size": encoder["type_vocab_size"],
        "initializer_range": encoder["initializer_range"],
        "layer_norm_eps": encoder["layer_norm_epsilon"],
        "position_embedding_type": "absolute",
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
    }
    if family in ("albert", "electra"):
        config["embedding_size"] = encoder["embedding_size"]
    if family == "albert":
        config.update(num_hidden_groups=encoder["num_hidden_groups"], inner_group_num=encoder["inner_group_num"])
    if family == "roberta":
        config.update(pad_token_id=encoder["position_offset"] - 1, bos_token_id=0, eos_token_id=2)
    return config


# ---------------------------------------------------------------------------------------------- reading


def read_hf_dir(path, model_type):
    """(config dict, name → float32 array) of an HF model folder; safetensors only."""
    import safetensors.numpy

    config_path = os.path.join(path, "config.json")
    if not os.path.isfile(config_path):
        raise ConversionError(f"{path}: no config.json.")
    with open(config_path, encoding="utf-8") as handle:
        config = json.load(handle)
    if config.get("model_type", model_type) != model_type:
        raise ConversionError(f"{config_path}: model_type is {config.get('model_type')!r}, not {model_type!r}.")
    files = sorted(glob.glob(os.path.join(path, "*.safetensors")))
    if not files:
        pickled = [name for name in os.listdir(path) if name.endswith((".bin", ".pt", ".pth", ".ckpt"))]
        hint = f" ({', '.join(pickled)} are pickle files, which plm_tf never loads)" if pickled else ""
        raise ConversionError(f"{path}: no *.safetensors file{hint}; re-save the model with "
                              f"save_pretrained(..., safe_serialization=True).")
    tensors = {}
    for file in files:
        try:
            loaded = safetensors.numpy.load_file(file)
        except Exception as error:  # safetensors raises its own error types for bad files and dtypes
            raise ConversionError(f"{file}: cannot read ({error}).") from None
        for name, value in loaded.items():
            if name in tensors:
                raise ConversionError(f"{path}: tensor {name!r} appears in more than one safetensors file.")
            tensors[name] = value.astype(np.float32) if value.dtype != np.float32 else value
    return config, tensors


def _has(tensors, *prefixes):
    return any(name.startswith(prefixes) for name in tensors)


def _prefix(tensors, family):
    """The encoder's name prefix: the family's ("bert.", ...) or "" in a bare `*Model` file."""
    return PREFIX[family] if _has(tensors, PREFIX[family]) else ""


def _is_buffer(name):
    return name.endswith(_BUFFERS)


def _spec_for(config, tensors, family, source):
    """(spec, part) for one HF file; part is "discriminator", "generator" or None."""
    use_pooler = _has(tensors, _prefix(tensors, family) + "pooler")
    encoder = encoder_config_from_hf(config, family, use_pooler, source)
    heads = {
        "mlm": _has(tensors, "cls.predictions.", "lm_head.", "predictions.", "generator_predictions.",
                    "generator_lm_head."),
        "sentence": _has(tensors, "cls.seq_relationship.", "sop_classifier."),
        "discriminator": _has(tensors, "discriminator_predictions."),
    }
    if heads["discriminator"]:
        return ModelSpec(family, dict(encoder, use_pooler=False), "electra"), "discriminator"
    if heads["sentence"]:
        if not heads["mlm"]:
            raise ConversionError(f"{source}: a sentence-pair head without a masked-LM head is not a plm_tf "
                                  f"pretraining model.")
        return ModelSpec(family, encoder, _SENTENCE_HEAD[family][0]), None
    if heads["mlm"]:
        if family in ("roberta", "electra") and encoder["activation"] != "gelu_exact":
            raise ConversionError(f"{source}: HF's {family} masked-LM head applies the exact GELU whatever "
                                  f"hidden_act says, but plm_tf's head uses the encoder's "
                                  f"{encoder['activation']!r}.")
        return ModelSpec(family, encoder, "mlm"), "generator" if family == "electra" else None
    return ModelSpec(family, encoder, None), None


def _generator_fraction(discriminator, generator_config, source):
    """generator_hidden_fraction for an HF generator config; ConversionError if plm_tf cannot derive it."""
    from plm_tf.models.configs import generator_config as derive

    fraction = generator_config["hidden_size"] / discriminator["hidden_size"]
    derived = derive(discriminator, fraction)
    for key in ("hidden_size", "intermediate_size", "num_heads", "num_layers", "embedding_size", "vocab_size",
                "max_position_embeddings", "type_vocab_size", "activation", "layer_norm_epsilon"):
        if derived[key] != generator_config[key]:
            raise ConversionError(
                f"{source}: generator {key} = {generator_config[key]!r}, but plm_tf derives {derived[key]!r} from "
                f"the discriminator (generator_config: intermediate 4·hidden, heads max(1, hidden // 64), same "
                f"depth, embedding size, vocabulary and positions)."
            )
    return fraction


def hf_to_plm_tf(input_dir, output_dir, model_type=None, generator_input=None, do_lower_case=None):
    """Converts an HF model folder (and, for ELECTRA, optionally the generator's folder) into a plm_tf model
    folder (see plm_tf.convert.common). `model_type` None = config.json's; `do_lower_case` None = the casing
    the source records (plm_tf.convert.vocab). Returns (model, spec)."""
    if model_type is None:
        model_type = _config_model_type(input_dir)
    check_model_type(model_type)
    config, tensors = read_hf_dir(input_dir, model_type)
    spec, part = _spec_for(config, tensors, model_type, input_dir)
    generator_tensors = None
    if generator_input is not None:
        if part != "discriminator":
            raise ConversionError(f"--generator_input needs an ELECTRA discriminator (ElectraForPreTraining) as "
                                  f"--input; {input_dir} is not one.")
        generator_config, generator_tensors = read_hf_dir(generator_input, model_type)
        generator_spec, generator_part = _spec_for(generator_config, generator_tensors, model_type, generator_input)
        if generator_part != "generator":
            raise ConversionError(f"{generator_input}: not an ELECTRA generator (ElectraForMaskedLM).")
        spec.generator_hidden_fraction = _generator_fraction(
            spec.encoder_config, generator_spec.encoder_config, generator_input
        )
        shared = [name for name in generator_tensors if name.startswith("electra.embeddings.") and not _is_buffer(name)]
        spec.tie_embeddings = all(
            name in tensors and tensors[name].shape == generator_tensors[name].shape
            and np.array_equal(tensors[name], generator_tensors[name])
            for name in shared
        )
    elif part == "discriminator":
        spec.has_generator = False
    model = build_model(spec)
    used = load_slots(model_slots(model, spec, bare_prefix=_prefix(tensors, model_type)), tensors, input_dir)
    check_all_used(tensors, used, input_dir, _is_buffer)
    if generator_tensors is not None:
        slots = model_slots(model, spec, "generator")
        if spec.tie_embeddings:  # the shared embeddings were loaded from the discriminator and are equal here
            slots = [slot for slot in slots if not slot.names[0].startswith("electra.embeddings.")]
            shared = {name for name in generator_tensors if name.startswith("electra.embeddings.")}
        else:
            shared = set()
        used = load_slots(slots, generator_tensors, generator_input) | shared
        if spec.tie_embeddings and _DECODER_WEIGHT["electra"] in generator_tensors:
            if not np.array_equal(generator_tensors[_DECODER_WEIGHT["electra"]],
                                  generator_tensors["electra.embeddings.word_embeddings.weight"]):
                raise ConversionError(f"{generator_input}: tensor 'generator_lm_head.weight' should be tied to the "
                                      f"word embeddings, but their values differ.")
            used.add(_DECODER_WEIGHT["electra"])
        check_all_used(generator_tensors, used, generator_input, _is_buffer)
    source = f"Hugging Face {os.path.abspath(input_dir)}" + (
        f" + generator {os.path.abspath(generator_input)}" if generator_input else "")
    write_plm_tf(model, spec, output_dir, source, vocab_dirs=(input_dir, generator_input), do_lower_case=do_lower_case,
                 sentence_embedding=_sentence_transformers_pooling(input_dir) if spec.objective is None else "auto")
    return model, spec


def _config_model_type(input_dir):
    path = os.path.join(input_dir, "config.json")
    if not os.path.isfile(path):
        raise ConversionError(f"{input_dir}: no config.json.")
    with open(path, encoding="utf-8") as handle:
        model_type = json.load(handle).get("model_type")
    if model_type is None:
        raise ConversionError(f"{path} has no model_type: pass --model_type.")
    return model_type


def _sentence_transformers_pooling(input_dir):
    """The sentence embedding of a sentence-transformers folder (1_Pooling/config.json): "mean" or "cls";
    "auto" for any other folder. Max pooling has no plm_tf equivalent and is refused."""
    path = os.path.join(input_dir, "1_Pooling", "config.json")
    if not os.path.isfile(path):
        return "auto"
    with open(path, encoding="utf-8") as handle:
        pooling = json.load(handle)
    modes = [key for key, value in pooling.items() if key.startswith("pooling_mode_") and value]
    if modes == ["pooling_mode_mean_tokens"]:
        return "mean"
    if modes == ["pooling_mode_cls_token"]:
        return "cls"
    raise ConversionError(f"{path}: pooling {modes} has no plm_tf sentence_embedding (mean or cls).")


# ---------------------------------------------------------------------------------------------- writing


def _write_hf(directory, config, tensors, vocab_dirs, tokenizer=None):
    import safetensors.numpy

    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as handle:
        json.dump(config, handle, indent=2, sort_keys=True)
        handle.write("\n")
    safetensors.numpy.save_file(tensors, os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})
    if tokenizer is not None and tokenizer.get("vocab") and os.path.isabs(tokenizer["vocab"]):
        vocab_dirs = (os.path.dirname(tokenizer["vocab"]),)  # a fine-tuning run records its vocabulary's path
    copy_vocab(vocab_dirs, directory)
    if tokenizer is not None and tokenizer.get("lower_case") is not None:
        # transformers' tokenizer classes read the casing from here (BertTokenizer, AlbertTokenizer).
        with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as handle:
            json.dump({"do_lower_case": bool(tokenizer["lower_case"])}, handle)
            handle.write("\n")


def _albert_identity_mapping(encoder, family, prefix, tensors):
    """HF ALBERT always maps E→H; a plm_tf ALBERT with E = H has no projection, i.e. the identity."""
    if family != "albert":
        return
    if encoder.embedding_projection is None:
        size = encoder.hidden_size
        tensors[f"{prefix}encoder.embedding_hidden_mapping_in.weight"] = np.eye(size, dtype=np.float32)
        tensors[f"{prefix}encoder.embedding_hidden_mapping_in.bias"] = np.zeros(size, np.float32)


def plm_tf_to_hf(model, spec, output_dir, generator_output=None, vocab_dirs=(), tokenizer=None):
    """Writes `model` as HF config.json + model.safetensors into `output_dir`; an ELECTRA pretraining model
    writes its discriminator there and, when `generator_output` is given, its generator there. The vocabulary
    files of `vocab_dirs` are copied, and `tokenizer` (a model.json tokenizer record) writes
    tokenizer_config.json's do_lower_case. Returns the list of folders written."""
    family, objective = spec.model_type, spec.objective
    if (family, objective) not in _ARCHITECTURES:
        raise ConversionError(f"HF {family} has no model for the {objective!r} objective (no such head).")
    exact_head = objective == "mlm" or (objective == "electra" and generator_output is not None)
    if family in ("roberta", "electra") and exact_head and spec.encoder_config["activation"] != "gelu_exact":
        raise ConversionError(f"HF's {family} masked-LM head applies the exact GELU; this model's head uses "
                              f"{spec.encoder_config['activation']!r}.")
    written = []
    tensors = export_slots(model_slots(model, spec))
    if family == "albert":
        _albert_identity_mapping(model if objective is None else model.encoder, family,
                                 "" if objective is None else PREFIX[family], tensors)
    config = hf_config(spec.encoder_config, family, _ARCHITECTURES[(family, objective)])
    _write_hf(output_dir, config, tensors, vocab_dirs, tokenizer)
    written.append(output_dir)
    if objective == "electra" and generator_output is not None:
        if not spec.has_generator:
            raise ConversionError("The checkpoint holds no ELECTRA generator; drop --generator_output.")
        generator = dict(model.generator.get_config())
        generator = {key: generator[key] for key in spec.encoder_config}
        tensors = export_slots(model_slots(model, spec, "generator"))
        _write_hf(generator_output, hf_config(generator, family, "ElectraForMaskedLM"), tensors, vocab_dirs,
                  tokenizer)
        written.append(generator_output)
    return written


# ---------------------------------------------------------------------------------------------- fine-tuned classifiers

# A fine-tuning run's ClassifierModel (pooled output → dropout → Dense) as HF `*ForSequenceClassification`, one
# name map per family; only where both heads compute the same function at inference (dropout off):
# - BERT / ALBERT (google-research `run_classifier`): P`pooler` → dropout → `classifier`, as in
#   BertForSequenceClassification / AlbertForSequenceClassification;
# - RoBERTa (fairseq `RobertaClassificationHead`, = HF's): dense + tanh on <s> → dropout → `out_proj`; plm_tf's
#   pooler is that dense, so it is written as `classifier.dense` (RobertaForSequenceClassification has no pooler).
# A head on the first token's state without a pooler (ELECTRA's google-research head; also a run whose encoder has
# no pooler, e.g. one converted from RobertaForMaskedLM) has no HF form: HF's heads insert a Dense + GELU
# (ElectraClassificationHead) or a pooler / Dense + tanh before the output layer.
_CLASSIFIER_HEAD = {
    "bert": ("BertForSequenceClassification", {"classifier": "classifier"}, "classifier_dropout"),
    "albert": ("AlbertForSequenceClassification", {"classifier": "classifier"}, "classifier_dropout_prob"),
    "roberta": ("RobertaForSequenceClassification", {"pooler": "classifier.dense", "classifier": "classifier.out_proj"},
                "classifier_dropout"),
}


def classifier_slots(model, family):
    """Slots of a plm_tf `ClassifierModel` in the names of HF's `*ForSequenceClassification` for `family`."""
    names = _CLASSIFIER_HEAD[family][1]
    slots = encoder_slots(model.encoder, family, PREFIX[family])
    if "pooler" in names:  # the pooler belongs to the head: drop it from the encoder's names
        pooler = f"{PREFIX[family]}pooler.dense."
        slots = [slot for slot in slots if not slot.names[0].startswith(pooler)]
        slots += _dense(names["pooler"], model.encoder.pooler)
    return [*slots, *_dense(names["classifier"], model.head.classifier)]


def restore_classifier(encoder, task, prefix):
    """The ClassifierModel of a fine-tuning run: `encoder` (built from task.json) + its head, restored from
    `prefix` (the run's best checkpoint, which saved the whole model under `model`)."""
    from plm_tf.convert.model_dir import restore
    from plm_tf.finetuning.model import ClassifierModel

    for key in ("num_classes", "label_names", "dropout_rate"):
        if key not in task:
            raise ConversionError(f"{os.path.dirname(os.path.dirname(prefix))}/task.json has no {key!r}: "
                                  f"not a `python -m plm_tf.finetune` run.")
    model = ClassifierModel(encoder, task["num_classes"], dropout_rate=task["dropout_rate"], name="classifier")
    model.build()
    restore(prefix, {"model": model}, ConversionError, what="the classifier of task.json")
    return model


def classifier_to_hf(model, spec, task, output_dir, vocab_dirs=(), tokenizer=None):
    """Writes a fine-tuned `ClassifierModel` as HF `*ForSequenceClassification` (config.json with num_labels,
    id2label / label2id from task.json's label_names, problem_type "regression" for one output) into
    `output_dir`. Returns [output_dir]. Raises ConversionError for heads HF cannot express (ELECTRA's)."""
    family = spec.model_type
    if family not in _CLASSIFIER_HEAD or model.encoder.pooler is None:
        extra = "a dense + GELU" if family == "electra" else "a dense + tanh (a pooler)"
        raise ConversionError(
            f"HF has no classifier for this {family} run's head (dropout → dense on the first token's state, "
            f"google-research/electra's; HF's {family} classification head adds {extra} before it): pass "
            f"--encoder_only to write the encoder alone.")
    architecture, _, dropout_key = _CLASSIFIER_HEAD[family]
    tensors = export_slots(classifier_slots(model, family))
    _albert_identity_mapping(model.encoder, family, PREFIX[family], tensors)
    config = hf_config(spec.encoder_config, family, architecture)
    labels = task["label_names"]
    if labels is None:  # regression: one score
        config.update(num_labels=1, problem_type="regression", id2label={0: "score"}, label2id={"score": 0})
    else:
        config.update(problem_type="single_label_classification", id2label=dict(enumerate(labels)),
                      label2id={name: i for i, name in enumerate(labels)})
    config[dropout_key] = float(task["dropout_rate"])
    _write_hf(output_dir, config, tensors, vocab_dirs, tokenizer)
    return [output_dir]
