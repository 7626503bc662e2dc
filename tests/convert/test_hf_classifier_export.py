"""`convert --from=plm_tf --to=hf` of a fine-tuning run writes HF `*ForSequenceClassification` (BERT, ALBERT,
RoBERTa) whose logits are plm_tf's and whose `pipeline("text-classification")` answers the run's label names;
ELECTRA's head, which HF cannot express, is refused unless --encoder_only."""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from plm_tf.convert.__main__ import run
from plm_tf.convert.common import ConversionError, ModelSpec, build_model, write_plm_tf
from plm_tf.data import assets
from plm_tf.data.tokenizers import load_tokenizer
from plm_tf.finetuning import export, features, trainer
from plm_tf.finetuning.model import ClassifierModel, new_encoder

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

FIXTURES = pathlib.Path(__file__).parents[1] / "finetuning" / "fixtures"
REPO = pathlib.Path(__file__).parents[2]
TEXTS = ["the walk was agreeable indeed", "his manner was horrid , she said", "mr darcy was excellent"]
KIND = {"bert": "wordpiece", "electra": "wordpiece", "albert": "sentencepiece", "roberta": "bpe"}
SEQ_LEN = 16


def encoder_config(family, vocab_size):
    offset = 2 if family == "roberta" else 0
    return dict(vocab_size=vocab_size, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=24,
                embedding_size=8 if family == "albert" else 16, max_position_embeddings=32 + offset,
                type_vocab_size=1 if family == "roberta" else 2, position_offset=offset, activation="gelu_exact",
                layer_norm_epsilon=1e-12, dropout_rate=0.1, attention_dropout_rate=0.1, initializer_range=0.02,
                share="all" if family == "albert" else "none", num_hidden_groups=1, inner_group_num=1,
                use_pooler=family != "electra")


def make_run(root, family, label_names, use_pooler=None):
    """A fine-tuning model_dir as `plm_tf.finetune` writes it (task.json + best/ckpt-1), random weights with
    nonzero head biases; the embedded vocabulary of the family's tokenizer."""
    tokenizer = load_tokenizer(KIND[family], assets.default_vocab_path(KIND[family]))
    config = encoder_config(family, tokenizer.vocab_size)
    if use_pooler is not None:
        config["use_pooler"] = use_pooler
    num_classes = 1 if label_names is None else len(label_names)
    model = ClassifierModel(new_encoder(config), num_classes, name="classifier")
    model.build()
    model.head.classifier.bias.assign(np.linspace(-0.5, 0.5, num_classes, dtype=np.float32))
    if model.encoder.pooler is not None:
        model.encoder.pooler.bias.assign(np.linspace(-0.3, 0.3, 16, dtype=np.float32))
    run_dir = os.path.join(root, family)
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), os.path.join(run_dir, "best"), 1).save()
    task = {"task": "fixture", "label_names": label_names, "is_pair": False, "positive_label": None,
            "seq_len": SEQ_LEN, "tokenizer_kind": KIND[family], "vocab_path": None, "lower_case": None,
            "encoder_config": config, "num_classes": num_classes, "dropout_rate": 0.1, "model_type": family}
    with open(os.path.join(run_dir, "task.json"), "w") as handle:
        json.dump(task, handle)
    return run_dir


class HfClassifierExportTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.root = tempfile.mkdtemp(dir=self.get_temp_dir())

    def assert_same_classifier(self, run_dir, out):
        """HF logits on plm_tf's features == plm_tf logits; returns (HF model, plm_tf logits)."""
        model, tokenizer, task = export.load_finetuned(run_dir)
        encoded = features.encode_texts(tokenizer, tf.constant(TEXTS), None, task["seq_len"])
        want = model(encoded, training=False).numpy()
        hf = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()
        with torch.no_grad():
            got = hf(input_ids=torch.tensor(encoded["input_ids"].numpy(), dtype=torch.long),
                     attention_mask=torch.tensor(encoded["input_mask"].numpy(), dtype=torch.long),
                     token_type_ids=torch.tensor(encoded["segment_ids"].numpy(), dtype=torch.long)).logits.numpy()
        np.testing.assert_allclose(got, want, atol=1e-5)
        return hf, want

    @pytest.mark.filterwarnings("ignore")
    def test_classifiers(self):
        labels = ["negative", "neutral", "positive"]
        for family, architecture in (("bert", "BertForSequenceClassification"),
                                     ("albert", "AlbertForSequenceClassification"),
                                     ("roberta", "RobertaForSequenceClassification")):
            with self.subTest(family):
                run_dir = make_run(self.root, family, labels)
                out = os.path.join(self.root, f"hf_{family}")
                self.assertEqual(run("plm_tf", "hf", None, run_dir, out), [out])
                hf, logits = self.assert_same_classifier(run_dir, out)
                self.assertEqual(type(hf).__name__, architecture)
                self.assertEqual(hf.config.id2label, dict(enumerate(labels)))
                self.assertEqual(hf.config.label2id, {name: i for i, name in enumerate(labels)})
                classify = transformers.pipeline("text-classification", model=out, framework="pt")
                answers = classify(TEXTS)
                self.assertEqual([a["label"] for a in answers], [labels[i] for i in logits.argmax(-1)])
                probabilities = tf.nn.softmax(logits).numpy().max(-1)
                np.testing.assert_allclose([a["score"] for a in answers], probabilities, atol=1e-5)

    @pytest.mark.filterwarnings("ignore")
    def test_regression(self):
        run_dir = make_run(self.root, "bert", None)
        out = os.path.join(self.root, "hf_regression")
        run("plm_tf", "hf", None, run_dir, out)
        hf, scores = self.assert_same_classifier(run_dir, out)
        self.assertEqual((hf.config.num_labels, hf.config.problem_type), (1, "regression"))
        answers = transformers.pipeline("text-classification", model=out, framework="pt")(TEXTS)
        self.assertEqual([a["label"] for a in answers], ["score"] * len(TEXTS))
        np.testing.assert_allclose([a["score"] for a in answers], scores[:, 0], atol=1e-5)  # raw, no sigmoid

    def test_a_real_fine_tuning_run(self):
        """One epoch of `plm_tf.finetune` on the committed fixture task, from a converted BERT folder."""
        source = os.path.join(self.root, "release")
        os.makedirs(source)
        shutil.copyfile(os.path.join(assets.assets_dir(), "wordpiece_vocab.txt"), os.path.join(source, "vocab.txt"))
        config = encoder_config("bert", load_tokenizer("wordpiece", assets.default_vocab_path("wordpiece")).vocab_size)
        spec = ModelSpec("bert", config, None)
        converted = os.path.join(self.root, "converted")
        write_plm_tf(build_model(spec), spec, converted, "test", vocab_dirs=(source,))
        run_dir = os.path.join(self.root, "finetuned")
        trainer.run_finetuning(["finetune/electra.gin"], [f"finetune.seq_len = {SEQ_LEN}", "finetune.batch_size = 16",
                                                          "finetune.num_epochs = 1"],
                               str(FIXTURES / "single"), run_dir, converted, print_fn=lambda *_: None)
        out = os.path.join(self.root, "hf_real")
        run("plm_tf", "hf", None, run_dir, out)
        hf, _ = self.assert_same_classifier(run_dir, out)
        self.assertEqual(hf.config.id2label, {0: "0", 1: "1"})

    def test_electra_is_refused_unless_encoder_only(self):
        run_dir = make_run(self.root, "electra", ["0", "1"])
        with self.assertRaisesRegex(ConversionError, r"electra classification head adds a dense \+ GELU.*--encoder_only"):
            run("plm_tf", "hf", None, run_dir, os.path.join(self.root, "refused"))
        # A RoBERTa without a pooler (converted from RobertaForMaskedLM) fine-tunes with the same head.
        with self.assertRaisesRegex(ConversionError, r"roberta classification head adds a dense \+ tanh"):
            run("plm_tf", "hf", None, make_run(self.root, "roberta", ["0", "1"], use_pooler=False),
                os.path.join(self.root, "refused_roberta"))
        out = os.path.join(self.root, "encoder")
        run("plm_tf", "hf", None, run_dir, out, encoder_only=True)
        with open(os.path.join(out, "config.json")) as handle:
            self.assertEqual(json.load(handle)["architectures"], ["ElectraModel"])
        spec = ModelSpec("bert", encoder_config("bert", 40), None)
        converted = os.path.join(self.root, "converted")
        write_plm_tf(build_model(spec), spec, converted, "test")
        with self.assertRaisesRegex(ConversionError, r"--encoder_only applies to a fine-tuning run"):
            run("plm_tf", "hf", None, converted, os.path.join(self.root, "x"), encoder_only=True)

    def test_cli_refusal_is_one_line(self):
        run_dir = make_run(self.root, "electra", ["0", "1"])
        done = subprocess.run([sys.executable, "-m", "plm_tf.convert", "--from=plm_tf", "--to=hf", f"--input={run_dir}",
                               f"--output={os.path.join(self.root, 'cli')}"], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        self.assertEqual(done.returncode, 2, done.stderr)
        last = done.stderr.strip().splitlines()[-1]
        self.assertIn("--encoder_only", last)
        self.assertNotIn("Traceback", done.stderr)
