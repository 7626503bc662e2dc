"""Journeys through the command lines: a checkpoint → convert → finetune → export → serve → convert back.

Every step is the command a user types, in its own process, with no flag beyond what the step needs (the
directories describe themselves). Sources: a random tiny `transformers` model of each family made here — BERT
(bare `BertModel`, cased, vocabulary only in tokenizer.json), RoBERTa (`RobertaForMaskedLM`, byte-level BPE only
in tokenizer.json), ALBERT (`AlbertForPreTraining`, spiece.model), ELECTRA discriminator alone and ELECTRA
discriminator + generator (vocab.txt) — and a model pretrained by `python -m plm_tf.train` (testing/bert_tiny.gin).

    convert --from=hf (or train) → finetune --init_checkpoint=DIR (one epoch of a committed fixture task)
      → export --checkpoint=RUN → check_journey.py in a fresh process: the SavedModel's predictions equal the
        Keras model's (1e-5) → convert --from=plm_tf --to=hf of RUN loads in transformers (1e-4)

The processes of a step run side by side (at most _PARALLEL at once) to keep the wall time small.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import pytest
import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSETS = os.path.join(REPO, "plm_tf", "assets")
FIXTURES = os.path.join(REPO, "tests", "finetuning", "fixtures")
CHECK = os.path.join(REPO, "tests", "journeys", "check_journey.py")
_PARALLEL = 4
FINETUNE_FLAGS = ["--gin_param=finetune.num_epochs = 1", "--gin_param=finetune.seq_len = 24",
                  "--gin_param=finetune.batch_size = 16"]
# journey → (fixture task, the family's fine-tuning recipe)
JOURNEYS = {
    "bert": ("single", "finetune/electra.gin"), "roberta": ("single", "finetune/roberta.gin"),
    "albert": ("pairs", "finetune/albert.gin"), "electra_discriminator": ("single", "finetune/electra.gin"),
    "electra_with_generator": ("pairs", "finetune/electra.gin"), "pretrained_by_plm_tf": ("single", "finetune/electra.gin"),
}

try:
    import torch  # noqa: F401
    import transformers
except ImportError:  # pragma: no cover - depends on the environment
    transformers = None


def _env():
    return dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
                TF_CPP_MIN_LOG_LEVEL="3")


def run_side_by_side(commands):
    """{name: argv} → {name: CompletedProcess-like (returncode, stdout, stderr)}, at most _PARALLEL at once."""
    pending, running, done = list(commands.items()), {}, {}
    while pending or running:
        while pending and len(running) < _PARALLEL:
            name, argv = pending.pop(0)
            running[name] = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                             text=True, env=_env(), cwd=REPO)
        name = next(iter(running))
        process = running.pop(name)
        out, err = process.communicate(timeout=600)
        done[name] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return done


# ---------------------------------------------------------------------------------------------- sources


def _wordpiece_tokens(extra=()):
    with open(os.path.join(ASSETS, "wordpiece_vocab.txt"), encoding="utf-8") as handle:
        tokens = handle.read().split("\n")[:-1]
    return tokens + [token for token in extra if token not in tokens]


def _small(config_class, vocab_size, **overrides):
    base = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=37, max_position_embeddings=64, type_vocab_size=2, hidden_dropout_prob=0.0,
                attention_probs_dropout_prob=0.0)
    base.update(overrides)
    return config_class(**base)


def make_sources(root):
    """Writes the five HF source folders; returns {journey: folder} (+ "electra_generator")."""
    torch.manual_seed(0)
    folders = {name: os.path.join(root, "hf", name) for name in
               ("bert", "roberta", "albert", "electra_discriminator", "electra_with_generator", "electra_generator")}

    # BERT: bare BertModel, cased WordPiece shipped only as tokenizer.json.
    tokens = _wordpiece_tokens(["Hello", "hello", "world"])
    model = transformers.BertModel(_small(transformers.BertConfig, len(tokens)))
    model.save_pretrained(folders["bert"])
    tokenizer_json = {"version": "1.0", "model": {"type": "WordPiece", "unk_token": "[UNK]",
                                                  "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                                                  "vocab": {token: i for i, token in enumerate(tokens)}},
                      "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": True,
                                     "strip_accents": None, "lowercase": False},
                      "pre_tokenizer": {"type": "BertPreTokenizer"}}
    _write_json(os.path.join(folders["bert"], "tokenizer.json"), tokenizer_json)
    _write_json(os.path.join(folders["bert"], "tokenizer_config.json"), {"do_lower_case": False, "cls_token": "[CLS]"})

    # RoBERTa: masked LM, byte-level BPE shipped only as tokenizer.json (<pad> = 1 = pad_token_id).
    with open(os.path.join(ASSETS, "bpe", "vocab.json"), encoding="utf-8") as handle:
        bpe_vocab = json.load(handle)
    with open(os.path.join(ASSETS, "bpe", "merges.txt"), encoding="utf-8") as handle:
        merges = [line for line in handle.read().split("\n")[1:] if line]
    config = _small(transformers.RobertaConfig, len(bpe_vocab), type_vocab_size=1, pad_token_id=bpe_vocab["<pad>"],
                    max_position_embeddings=64 + bpe_vocab["<pad>"] + 1, layer_norm_eps=1e-5)
    transformers.RobertaForMaskedLM(config).save_pretrained(folders["roberta"])
    _write_json(os.path.join(folders["roberta"], "tokenizer.json"),
                {"version": "1.0", "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False},
                 "model": {"type": "BPE", "vocab": bpe_vocab, "merges": merges}})

    # ALBERT: MLM + SOP heads, SentencePiece.
    import sentencepiece

    pieces = sentencepiece.SentencePieceProcessor(model_file=os.path.join(ASSETS, "sentencepiece.model"))
    config = _small(transformers.AlbertConfig, pieces.get_piece_size(), embedding_size=16, hidden_act="gelu_new")
    transformers.AlbertForPreTraining(config).save_pretrained(folders["albert"])
    shutil.copyfile(os.path.join(ASSETS, "sentencepiece.model"), os.path.join(folders["albert"], "spiece.model"))

    # ELECTRA: a discriminator alone, and a discriminator with its (half-width, untied) generator.
    tokens = _wordpiece_tokens()
    for name in ("electra_discriminator", "electra_with_generator"):
        config = _small(transformers.ElectraConfig, len(tokens), embedding_size=16)
        transformers.ElectraForPreTraining(config).save_pretrained(folders[name])
    generator = _small(transformers.ElectraConfig, len(tokens), embedding_size=16, hidden_size=16,
                       intermediate_size=64, num_attention_heads=1)
    transformers.ElectraForMaskedLM(generator).save_pretrained(folders["electra_generator"])
    for name in ("electra_discriminator", "electra_with_generator", "electra_generator"):
        shutil.copyfile(os.path.join(ASSETS, "wordpiece_vocab.txt"), os.path.join(folders[name], "vocab.txt"))
    return folders


def _write_json(path, value):
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle)


def _errors_of(result):
    """The stderr lines a user sees (TensorFlow's start-up chatter is not plm_tf's)."""
    return [line for line in result.stderr.strip().splitlines() if line.startswith("plm_tf.")]


@pytest.mark.slow  # ~40 short processes (each a TensorFlow start-up), side by side
@unittest.skipIf(transformers is None, "torch and transformers are needed to make the source checkpoints")
class JourneyTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp(prefix="plm_tf_journeys_")
        cls.sources = make_sources(cls.root)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)
        super().tearDownClass()

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def assert_succeeded(self, results):
        for name, result in results.items():
            self.assertEqual(result.returncode, 0, f"{name}: {result.args}\n{result.stderr[-3000:]}")

    def test_every_family_from_checkpoint_to_served_model_and_back(self):
        # 1. convert (and pretrain).
        step = {name: ["-m", "plm_tf.convert", "--from=hf", f"--input={self.sources[name]}",
                       f"--output={self.path('converted', name)}"] for name in JOURNEYS if name in self.sources}
        step["electra_with_generator"].append(f"--generator_input={self.sources['electra_generator']}")
        step["pretrained_by_plm_tf"] = ["-m", "plm_tf.train", "--gin_file=testing/bert_tiny.gin",
                                        f"--model_dir={self.path('converted', 'pretrained_by_plm_tf')}"]
        self.assert_succeeded(run_side_by_side(step))
        manifest = json.load(open(self.path("converted", "bert", "model.json")))
        self.assertEqual((manifest["objective"], manifest["tokenizer"]["lower_case"]), (None, False))
        self.assertEqual(json.load(open(self.path("converted", "roberta", "model.json")))["tokenizer"]["vocab"],
                         "vocab.json")
        self.assertFalse(json.load(open(self.path("converted", "electra_discriminator", "model.json")))["has_generator"])

        # 2. fine-tune every one; export two converted folders as they are; random init from a converted model.gin.
        step = {name: ["-m", "plm_tf.finetune", f"--gin_file={recipe}", f"--init_checkpoint={self.path('converted', name)}",
                       f"--task_dir={os.path.join(FIXTURES, task)}", f"--model_dir={self.path('finetuned', name)}",
                       *FINETUNE_FLAGS] for name, (task, recipe) in JOURNEYS.items()}
        for name in ("bert", "electra_discriminator"):
            step[f"export {name}"] = ["-m", "plm_tf.export", f"--checkpoint={self.path('converted', name)}",
                                      f"--output={self.path('encoder_export', name)}"]
        step["random init"] = ["-m", "plm_tf.finetune", "--gin_file=finetune/electra.gin",
                               f"--gin_file={self.path('converted', 'bert', 'model.gin')}",
                               f"--task_dir={os.path.join(FIXTURES, 'single')}",
                               f"--model_dir={self.path('finetuned', 'random')}", *FINETUNE_FLAGS]
        self.assert_succeeded(run_side_by_side(step))
        random_task = json.load(open(self.path("finetuned", "random", "task.json")))
        self.assertEqual((random_task["lower_case"], random_task["vocab_path"]),
                         (False, self.path("converted", "bert", "vocab.txt")))

        # 3. export the fine-tuned classifiers; convert the fine-tuned encoders back to HF.
        step = {}
        for name in JOURNEYS:
            step[f"export {name}"] = ["-m", "plm_tf.export", f"--checkpoint={self.path('finetuned', name)}",
                                      f"--output={self.path('served', name)}"]
            step[f"back {name}"] = ["-m", "plm_tf.convert", "--from=plm_tf", "--to=hf",
                                    f"--input={self.path('finetuned', name)}", f"--output={self.path('back', name)}"]
            if name.startswith("electra") or name == "roberta":  # heads without a pooler have no HF form
                step[f"back {name}"].append("--encoder_only")
        step["back with generator"] = [
            "-m", "plm_tf.convert", "--from=plm_tf", "--to=hf", f"--input={self.path('converted', 'electra_with_generator')}",
            f"--output={self.path('back', 'discriminator')}", f"--generator_output={self.path('back', 'generator')}"]
        self.assert_succeeded(run_side_by_side(step))

        # 4. a fresh process per journey: SavedModel == Keras model, HF model == Keras encoder.
        step = {}
        for name in JOURNEYS:
            step[name] = [CHECK, f"--finetune_dir={self.path('finetuned', name)}",
                          f"--saved_model={self.path('served', name)}", f"--hf_dir={self.path('back', name)}"]
            if name in ("bert", "electra_discriminator"):
                step[name].append(f"--encoder_export={self.path('encoder_export', name)}")
        results = run_side_by_side(step)
        self.assert_succeeded(results)
        reports = {name: json.loads(result.stdout.strip().splitlines()[-1]) for name, result in results.items()}
        expected_class = {"bert": "BertModel", "roberta": "RobertaModel", "albert": "AlbertModel",
                          "electra_discriminator": "ElectraModel", "electra_with_generator": "ElectraModel",
                          "pretrained_by_plm_tf": "BertModel"}
        for name, report in reports.items():
            self.assertEqual(report["hf_class"], expected_class[name], name)
            self.assertLessEqual(report["logits_max_diff"], 1e-5, name)
            self.assertEqual(report["examples"], 16, name)
        # The cased BERT stays cased in serving; the uncased ELECTRA vocabulary lowercases.
        self.assertEqual(reports["bert"]["tokens"], ["[CLS]", "Hello", "world", "[SEP]"])
        self.assertEqual(reports["electra_discriminator"]["tokens"][0], "[CLS]")
        self.assertNotIn("Hello", reports["electra_discriminator"]["tokens"])
        self.assertIn("encode", reports["bert"]["encode_signatures"])
        # The ELECTRA pair went back out whole: the generator loads as ElectraForMaskedLM.
        generator = transformers.ElectraForMaskedLM.from_pretrained(self.path("back", "generator"))
        self.assertEqual(generator.config.hidden_size, 16)

    def test_a_failure_at_any_step_is_one_line_with_status_2(self):
        converted = self.path("errors", "converted")
        done = run_side_by_side({"convert": ["-m", "plm_tf.convert", "--from=hf",
                                             f"--input={self.sources['electra_discriminator']}", f"--output={converted}"]})
        self.assert_succeeded(done)
        # A folder whose model.json promises a third layer the checkpoint lacks.
        deeper = self.path("errors", "deeper")
        shutil.copytree(converted, deeper)
        manifest = json.load(open(os.path.join(deeper, "model.json")))
        manifest["encoder_config"]["num_layers"] = 3
        _write_json(os.path.join(deeper, "model.json"), manifest)
        # A converted model without any vocabulary.
        bare = self.path("errors", "no_vocab_source")
        shutil.copytree(self.sources["albert"], bare)
        os.remove(os.path.join(bare, "spiece.model"))
        steps = {
            "export deeper": ["-m", "plm_tf.export", f"--checkpoint={deeper}", f"--output={self.path('errors', 'x')}"],
            "finetune deeper": ["-m", "plm_tf.finetune", f"--init_checkpoint={deeper}",
                                f"--task_dir={os.path.join(FIXTURES, 'single')}", f"--model_dir={self.path('errors', 'y')}"],
            "convert back deeper": ["-m", "plm_tf.convert", "--from=plm_tf", "--to=hf", f"--input={deeper}",
                                    f"--output={self.path('errors', 'z')}"],
            "convert without vocabulary": ["-m", "plm_tf.convert", "--from=hf", f"--input={bare}",
                                           f"--output={self.path('errors', 'no_vocab')}"],
            "predict no export": ["-m", "plm_tf.predict", f"--saved_model={self.path('errors', 'nothing')}", "a text"],
        }
        results = run_side_by_side(steps)
        for name in ("export deeper", "finetune deeper", "convert back deeper", "predict no export"):
            result = results[name]
            self.assertEqual(result.returncode, 2, f"{name}: {result.stderr[-2000:]}")
            self.assertEqual(len(_errors_of(result)), 1, f"{name}: {result.stderr[-2000:]}")
            self.assertNotIn("Traceback", result.stderr, name)
        for name in ("export deeper", "finetune deeper", "convert back deeper"):
            line = _errors_of(results[name])[0]
            self.assertIn("missing 16: ", line)  # layer_2's 16 variables, named
            self.assertIn("layer_2", line)
        # Converting without a vocabulary works (the weights are fine) and says so; fine-tuning it then fails once.
        self.assertEqual(results["convert without vocabulary"].returncode, 0)
        self.assertIn("ships no vocabulary", results["convert without vocabulary"].stderr)
        done = run_side_by_side({"finetune": ["-m", "plm_tf.finetune", f"--init_checkpoint={self.path('errors', 'no_vocab')}",
                                              f"--task_dir={os.path.join(FIXTURES, 'single')}",
                                              f"--model_dir={self.path('errors', 'w')}"]})["finetune"]
        self.assertEqual(done.returncode, 2, done.stderr[-2000:])
        self.assertEqual(len(_errors_of(done)), 1, done.stderr[-2000:])
        self.assertIn("has no vocabulary", _errors_of(done)[0])
