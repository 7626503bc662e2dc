"""`python -m plm_tf.convert`: released checkpoints into plm_tf, and plm_tf back out to Hugging Face.

Into plm_tf (writes OUTPUT/ckpt.*, OUTPUT/checkpoint, OUTPUT/model.gin and the vocabulary files):

    python -m plm_tf.convert --from=hf --model_type=electra --input=electra-base-discriminator \\
        [--generator_input=electra-base-generator] --output=converted/electra_base
    python -m plm_tf.convert --from=tf1 --model_type=albert --input=albert_base/model.ckpt-best \\
        [--config=albert_base/albert_config.json] --output=converted/albert_base

Back out (writes OUTPUT/config.json + OUTPUT/model.safetensors, loadable with transformers'
`from_pretrained`, and the tokenizer files for `AutoTokenizer` / `pipeline()` (`plm_tf.convert.hf_tokenizer`);
an ELECTRA pretraining model writes its discriminator to --output and, with --generator_output, its generator
there):

    python -m plm_tf.convert --from=plm_tf --to=hf --model_type=electra --input=converted/electra_base \\
        [--gin_file=...] [--gin_param=...] --output=hf/electra_base [--generator_output=hf/electra_base_gen]

--input for --from=plm_tf is any plm_tf model directory: a converted folder (its model.json), a fine-tuning
model_dir (its classifier, written as `*ForSequenceClassification` with the run's label names — BERT, ALBERT and
RoBERTa, whose heads HF has; with --encoder_only, as ELECTRA's head needs, its encoder alone as a `*Model`), or a
trainer's model_dir / checkpoint prefix (its operative_config.gin, or --gin_file); --model_type defaults to the
family the directory records. --from=hf reads --model_type from config.json when it is not given. The tokenizer's
casing is carried over (--do_lower_case overrides what the source says) and written back as tokenizer_config.json.
Errors end with one line on stderr and exit status 2.
"""
import sys

from absl import app, flags, logging

from plm_tf.cli import exit_with_error

flags.DEFINE_enum("from", None, ["hf", "tf1", "plm_tf"], "Source format.")
flags.DEFINE_enum("to", "plm_tf", ["plm_tf", "hf"], "Target format: plm_tf (from hf / tf1) or hf (from plm_tf).")
flags.DEFINE_string("model_type", None, "Model family: bert, roberta, albert or electra (--from=plm_tf: default the "
                    "family the directory records).")
flags.DEFINE_boolean("do_lower_case", None, "--to=plm_tf: whether the tokenizer lowercases; default from the "
                     "source (tokenizer_config.json, tokenizer.json, the TF1 config or release name), else the "
                     "family's default.")
flags.DEFINE_string("input", None, "HF model folder, TF1 checkpoint prefix or folder, or plm_tf checkpoint.")
flags.DEFINE_string("output", None, "Folder to write.")
flags.DEFINE_string("generator_input", None, "--from=hf, ELECTRA: the generator's HF folder (ElectraForMaskedLM).")
flags.DEFINE_string("generator_output", None, "--to=hf, ELECTRA pretraining model: folder for the generator.")
flags.DEFINE_string("config", None, "--from=tf1: bert_config.json / albert_config.json (default: next to the "
                    "checkpoint; else inferred from shapes).")
flags.DEFINE_multi_string("gin_file", [], "--from=plm_tf: the model's gin file(s) (default INPUT's model.gin).")
flags.DEFINE_multi_string("gin_param", [], "--from=plm_tf: extra gin bindings.")
flags.DEFINE_boolean("encoder_only", False, "--to=hf, fine-tuning run: write its encoder alone (`*Model`), not the "
                     "classifier (`*ForSequenceClassification`, which ELECTRA's head cannot be).")
FLAGS = flags.FLAGS

_USAGE = {
    ("hf", "plm_tf"): {"generator_input", "do_lower_case"},
    ("tf1", "plm_tf"): {"config", "do_lower_case"},
    ("plm_tf", "hf"): {"generator_output", "gin_file", "gin_param", "encoder_only"},
}
_OPTIONAL = {"generator_input", "generator_output", "config", "gin_file", "gin_param", "do_lower_case", "encoder_only"}


def run(source, target, model_type, input_path, output, generator_input=None, generator_output=None, config=None,
        gin_files=(), gin_params=(), do_lower_case=None, encoder_only=False):
    """Performs one conversion; returns the list of folders written. Raises ConversionError."""
    from plm_tf.convert import ConversionError, hf_to_plm_tf, plm_tf_to_hf, read_plm_tf, tf1_to_plm_tf

    if (source, target) not in _USAGE:
        raise ConversionError(f"--from={source} --to={target} is not a conversion plm_tf offers "
                              f"({', '.join(f'{a}→{b}' for a, b in _USAGE)}).")
    given = {"generator_input": generator_input, "generator_output": generator_output, "config": config,
             "gin_file": list(gin_files), "gin_param": list(gin_params), "do_lower_case": do_lower_case is not None,
             "encoder_only": encoder_only}
    stray = sorted(name for name in _OPTIONAL - _USAGE[(source, target)] if given[name])
    if stray:
        raise ConversionError(f"--{stray[0]} does not apply to --from={source} --to={target}.")
    if source == "tf1" and model_type is None:
        raise ConversionError("--model_type is required with --from=tf1.")
    if source == "hf":
        hf_to_plm_tf(input_path, output, model_type, generator_input=generator_input, do_lower_case=do_lower_case)
        return [output]
    if source == "tf1":
        tf1_to_plm_tf(input_path, output, model_type, config_file=config, do_lower_case=do_lower_case)
        return [output]
    model, spec, folder = read_plm_tf(input_path, model_type, gin_files, gin_params)
    if spec.objective == "electra" and spec.has_generator and generator_output is None:
        logging.warning("The ELECTRA generator is not written: pass --generator_output to keep it.")
    from plm_tf.convert import model_dir

    found = model_dir.open_model_dir(folder, ConversionError) if model_dir.is_model_dir(folder) else None
    finetuned = found is not None and found.kind == "finetuning"
    if encoder_only and not finetuned:
        raise ConversionError(f"--encoder_only applies to a fine-tuning run (task.json); {input_path} is not one.")
    if finetuned and not encoder_only:
        from plm_tf.convert.hf import classifier_to_hf, restore_classifier

        classifier = restore_classifier(model, found.task, found.prefix)
        written = classifier_to_hf(classifier, spec, found.task, output, vocab_dirs=(folder,),
                                   tokenizer=_tokenizer_record(folder))
    else:
        written = plm_tf_to_hf(model, spec, output, generator_output=generator_output, vocab_dirs=(folder,),
                               tokenizer=_tokenizer_record(folder))
    from plm_tf.convert.hf_tokenizer import tokenizer_of, write_hf_tokenizer

    tokenizer = tokenizer_of(folder, spec.objective)
    if tokenizer is None:
        logging.warning("%s has no vocabulary: the export has no tokenizer files for AutoTokenizer.", folder)
        return written
    for directory in written:  # AutoTokenizer / pipeline() read these files
        write_hf_tokenizer(directory, spec.model_type, spec.encoder_config, tokenizer)
    return written


def _tokenizer_record(folder):
    """The converted folder's model.json tokenizer record (None for other directories)."""
    import json
    import os

    from plm_tf.convert.model_dir import MANIFEST, TASK_FILE

    path = os.path.join(folder, MANIFEST)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            return json.load(handle).get("tokenizer")
    path = os.path.join(folder, TASK_FILE)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            task = json.load(handle)
        return {"kind": task["tokenizer_kind"], "vocab": task["vocab_path"], "lower_case": task.get("lower_case")}
    return None


def main(argv):
    if len(argv) > 1:
        sys.exit(f"plm_tf.convert: unexpected arguments {argv[1:]}.")
    logging.set_verbosity(logging.WARNING)
    missing = [name for name in ("from", "input", "output") if FLAGS[name].value is None]
    if missing:
        print(f"plm_tf.convert: error: --{missing[0]} is required.", file=sys.stderr)
        sys.exit(2)
    from plm_tf.convert import ConversionError

    try:
        written = run(FLAGS["from"].value, FLAGS.to, FLAGS.model_type, FLAGS.input, FLAGS.output,
                      FLAGS.generator_input, FLAGS.generator_output, FLAGS.config, FLAGS.gin_file, FLAGS.gin_param,
                      FLAGS.do_lower_case, FLAGS.encoder_only)
    except (ConversionError, FileNotFoundError) as error:
        exit_with_error("plm_tf.convert", error)
    for folder in written:
        print(f"plm_tf.convert: wrote {folder}")


if __name__ == "__main__":
    app.run(main)
