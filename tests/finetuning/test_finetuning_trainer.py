"""The fine-tuning run end to end on tiny fixtures: results JSON, best checkpoint, restore, CLI, export."""
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import gin
import numpy as np
import pytest
import tensorflow as tf

from plm_tf.finetuning import export, features, model as model_lib, trainer
from plm_tf.gin_config import parse_gin
from testing_utils import REPO_ROOT, shared_data_path

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
# A tiny ELECTRA encoder (gin/testing/electra_tiny.gin) with the ELECTRA fine-tuning recipe, sized for tests.
TINY = ["testing/electra_tiny.gin", "finetune/electra.gin"]
FAST = ["finetune.seq_len = 24", "finetune.batch_size = 16", "finetune.learning_rate = 3e-3"]


def _tmpdir(test):
    return tempfile.mkdtemp(dir=test.get_temp_dir())


class FinetuneRunTest(tf.test.TestCase):

    def test_single_sentence_run_learns_and_keeps_best(self):
        model_dir = _tmpdir(self)
        lines = []
        results = trainer.run_finetuning(TINY, FAST + ["finetune.num_epochs = 6"], str(FIXTURES / "single"),
                                         model_dir, print_fn=lines.append)
        with open(os.path.join(model_dir, "results.json")) as f:
            self.assertEqual(json.load(f), json.loads(json.dumps(results)))
        self.assertEqual(results["init"], "random")
        self.assertLen(results["epochs"], 6)
        self.assertLen(lines, 1 + 6 + 2)  # header, one line per epoch, test metrics, test predictions file
        # The best epoch is the first one with the highest dev accuracy, and its weights are what is kept.
        accuracies = [e["dev"]["accuracy"] for e in results["epochs"]]
        self.assertEqual(results["best"]["epoch"], int(np.argmax(accuracies)) + 1)
        self.assertEqual(results["best"]["dev"]["accuracy"], max(accuracies))
        self.assertEqual(os.path.basename(results["best"]["checkpoint"]), f"ckpt-{results['best']['epoch']}")
        # Majority baseline by hand: train has more 1s or 0s; dev accuracy of that class.
        majority = results["majority_baseline"]["dev"]["accuracy"]
        self.assertBetween(majority, 0.3, 0.7)
        # The lexical cue is learnable: train loss falls and dev accuracy beats the majority class.
        losses = [e["train_loss"] for e in results["epochs"]]
        self.assertLess(losses[-1], losses[0])
        self.assertGreater(results["best"]["dev"]["accuracy"], majority)
        self.assertFalse(results["best"]["majority_only"])  # so no "learned only the majority class" line
        # Test metrics come from the best epoch's weights.
        reloaded, tokenizer, info = export.load_finetuned(model_dir)
        self.assertEqual(info["label_names"], ["0", "1"])
        task_test = features.encode_texts(tokenizer, tf.constant(_column(FIXTURES / "single" / "test.tsv", 0)),
                                          None, 24)
        predictions = np.argmax(trainer.predict(reloaded, {k: v.numpy() for k, v in task_test.items()}), -1)
        labels = np.array([int(x) for x in _column(FIXTURES / "single" / "test.tsv", 1)])
        self.assertAlmostEqual(results["test"]["accuracy"], float(np.mean(predictions == labels)))

        # Export: raw text in, the same logits as the Keras model out.
        export_dir = os.path.join(model_dir, "export")
        export.export_from_model_dir(model_dir, export_dir)
        with open(os.path.join(export_dir, "README.md"), encoding="utf-8") as f:  # the export's model card
            card = f.read()
        self.assertIn("# Fine-tuned 2-class classifier serving export (SavedModel)", card)
        self.assertIn("| labels | 0, 1 |", card)
        served = tf.saved_model.load(export_dir)
        texts = ["the ball was charming indeed", '"her letter was dreadful indeed', "x"]
        outputs = served.signatures["serving_default"](text=tf.constant(texts))
        expected = reloaded(features.encode_texts(tokenizer, tf.constant(texts), None, 24), training=False)
        self.assertAllClose(outputs["logits"], expected, atol=1e-5)
        self.assertAllClose(tf.reduce_sum(outputs["probabilities"], -1), [1.0] * 3)
        self.assertAllEqual(outputs["label"], tf.gather(tf.constant(["0", "1"]), outputs["label_id"]))
        # TensorFlow Serving's TF1 loader initialises every variable and gives the same logits.
        import tensorflow_text  # noqa: F401

        with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
            meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], export_dir)
            handles = [op for op in graph.get_operations()
                       if op.type == "VarHandleOp" and op.get_attr("dtype") == tf.float32]
            initialized = session.run([tf.raw_ops.VarIsInitializedOp(resource=op.outputs[0]) for op in handles])
            signature = meta_graph.signature_def["serving_default"]
            logits = session.run(graph.get_tensor_by_name(signature.outputs["logits"].name),
                                 {graph.get_tensor_by_name(signature.inputs["text"].name): texts})
        self.assertLen(handles, len([v for v in reloaded.variables if v.dtype == "float32"]))
        self.assertAllEqual(initialized, [True] * len(handles))
        self.assertAllClose(logits, expected, atol=1e-5)

    def test_pairs_and_regression(self):
        pairs = trainer.run_finetuning(TINY, FAST + ["finetune.num_epochs = 1", "finetune.layer_decay = 1.0"],
                                       str(FIXTURES / "pairs"), _tmpdir(self))
        self.assertEqual(set(pairs["best"]["dev"]), {"accuracy", "f1", "matthews_corrcoef"})
        self.assertEqual(pairs["hyperparameters"]["optimizer"], "LayerwiseAdamWeightDecay")
        model_dir = _tmpdir(self)
        scores = trainer.run_finetuning(TINY, FAST + ["finetune.num_epochs = 2", "finetune.schedule = 'fairseq'"],
                                        str(FIXTURES / "regression"), model_dir)
        self.assertEqual(scores["selection_metric"], "pearson_spearman_mean")
        self.assertEqual(set(scores["best"]["dev"]), {"pearson", "spearman", "pearson_spearman_mean", "mse"})
        self.assertIsNone(scores["majority_baseline"]["dev"])
        self.assertNotIn("test", scores)
        # A regression export returns one score per pair.
        export.export_from_model_dir(model_dir, os.path.join(model_dir, "export"))
        served = tf.saved_model.load(os.path.join(model_dir, "export"))
        out = served.signatures["serving_default"](text_a=tf.constant(["charming happy", "horrid"]),
                                                   text_b=tf.constant(["the walk", "the ball"]))
        self.assertEqual(out["score"].shape, (2,))

    def test_albert_and_roberta_recipes(self):
        """The ALBERT recipe on a shared-layer encoder with a pooler (SentencePiece), RoBERTa's with BPE pairs."""
        albert = trainer.run_finetuning(
            ["testing/albert_tiny.gin", "finetune/albert.gin"],
            ["finetune.seq_len = 24", "finetune.num_epochs = 1", "finetune.tokenizer_kind = 'sentencepiece'"],
            str(FIXTURES / "pairs"), _tmpdir(self))
        self.assertEqual(albert["hyperparameters"]["schedule"], "bert")
        self.assertEqual(albert["hyperparameters"]["batch_size"], 128)
        model_dir = _tmpdir(self)
        roberta = trainer.run_finetuning(
            ["testing/roberta_tiny.gin", "finetune/roberta.gin"],
            ["finetune.seq_len = 24", "finetune.num_epochs = 1", "finetune.tokenizer_kind = 'bpe'"],
            str(FIXTURES / "pairs"), model_dir)
        self.assertEqual(roberta["hyperparameters"]["optimizer"], "LayerwiseFairseqAdam")
        with open(os.path.join(model_dir, "task.json")) as f:
            self.assertEqual(json.load(f)["tokenizer_kind"], "bpe")

    def test_configuration_errors(self):
        with self.assertRaisesRegex(trainer.FinetuningError, "finetune.schedule must be one of"):
            trainer.run_finetuning(TINY, ["finetune.schedule = 'cosine'"], str(FIXTURES / "single"), _tmpdir(self))
        with self.assertRaisesRegex(trainer.FinetuningError, "exceeds the encoder's 64 positions"):
            trainer.run_finetuning(TINY, ["finetune.seq_len = 128"], str(FIXTURES / "single"), _tmpdir(self))
        with self.assertRaisesRegex(trainer.FinetuningError, "needs its encoder_config"):
            trainer.run_finetuning(["finetune/electra.gin"], [], str(FIXTURES / "single"), _tmpdir(self))
        with self.assertRaisesRegex(trainer.FinetuningError, "selection_metric = 'auc'"):
            trainer.run_finetuning(TINY, FAST + ["finetune.num_epochs = 1", "finetune.selection_metric = 'auc'"],
                                   str(FIXTURES / "single"), _tmpdir(self))


def _column(path, index):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t")[index] for line in f.readlines()[1:]]


class RestoreEncoderTest(tf.test.TestCase):
    """restore_encoder reads a checkpoint laid out as `python -m plm_tf.train` writes it."""

    def _pretraining_run(self, run_dir, vocab_path=None):
        from plm_tf.data import pipelines
        from plm_tf.models.builders import build_pretraining_model
        from plm_tf.training.checkpointing import CheckpointManager
        from plm_tf.training.optimizers import create_optimizer

        parse_gin(["testing/electra_tiny.gin"], finalize=False)
        with gin.unlock_config():
            gin.bind_parameter("encoder_config.vocab_size",
                               pipelines.load_tokenizer("wordpiece", vocab_path).vocab_size)
            if vocab_path is not None:
                gin.bind_parameter("pretrain.vocab_path", vocab_path)
        model = build_pretraining_model(objective="electra")
        model.build()
        optimizer = create_optimizer()
        optimizer.build(model.trainable_variables)
        for variable in model.trainable_variables:  # weights no fresh initialisation would produce
            variable.assign(tf.random.stateless_normal(variable.shape, seed=[len(variable.path), 7]))
        manager = CheckpointManager(run_dir, model, optimizer)
        manager.step.assign(6)
        manager.save(force=True)
        with open(os.path.join(run_dir, "operative_config.gin"), "w") as f:
            f.write(gin.config_str())
        gin.clear_config()
        return model

    def test_restores_discriminator_from_dir_and_prefix(self):
        run_dir = _tmpdir(self)
        pretrained = self._pretraining_run(run_dir)
        for init in (run_dir, tf.train.latest_checkpoint(run_dir)):
            encoder, info = model_lib.restore_encoder(init)
            self.assertEqual(info["objective"], "electra")
            self.assertEqual(info["tokenizer_kind"], "wordpiece")
            self.assertFalse(info["encoder_config"]["use_pooler"])
            expected = pretrained.discriminator.trainable_variables
            self.assertLen(encoder.trainable_variables, len(expected))
            for got, want in zip(encoder.trainable_variables, expected):
                self.assertAllEqual(got, want, msg=want.path)

    def test_fine_tunes_from_checkpoint(self):
        run_dir = _tmpdir(self)
        self._pretraining_run(run_dir)
        results = trainer.run_finetuning(["finetune/electra.gin"], FAST + ["finetune.num_epochs = 1"],
                                         str(FIXTURES / "single"), _tmpdir(self), init_checkpoint=run_dir)
        self.assertEqual(results["init"], tf.train.latest_checkpoint(run_dir))
        with self.assertRaisesRegex(trainer.FinetuningError, "pretrained with 'wordpiece'"):
            trainer.run_finetuning(["finetune/electra.gin"], ["finetune.tokenizer_kind = 'bpe'"],
                                   str(FIXTURES / "single"), _tmpdir(self), init_checkpoint=run_dir)

    def test_finetune_demo_script_gives_random_init_the_run_architecture_and_vocab(self):
        import importlib.util
        from unittest import mock

        spec = importlib.util.spec_from_file_location("finetune_demo", REPO_ROOT / "scripts" / "finetune_demo.py")
        demo = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(demo)
        vocab = str(REPO_ROOT / "tests" / "data" / "fixtures" / "wordpiece_vocab.txt")  # not the embedded vocab
        run_dir, out_dir = _tmpdir(self), _tmpdir(self)
        self._pretraining_run(run_dir, vocab_path=vocab)
        argv = ["finetune_demo.py", f"--pretrain_dir={run_dir}", f"--out_dir={out_dir}", f"--tasks_root={FIXTURES}",
                "--tasks=single", "--seeds=0,1", "--num_epochs=1", "--seq_len=24",
                "--gin_file=finetune/electra.gin", "--gin_param=finetune.batch_size = 16"]
        with mock.patch.object(sys, "argv", argv):
            demo.main()
        with open(os.path.join(out_dir, "summary.json")) as f:
            summary = json.load(f)["single"]
        self.assertEqual(sorted(summary["pretrained"]), ["0", "1"])
        self.assertEqual(sorted(summary["random"]), ["0", "1"])
        self.assertEqual(summary["random"]["0"]["init"], "random")
        self.assertEqual(summary["pretrained"]["0"]["init"], tf.train.latest_checkpoint(run_dir))
        task_info = {}
        for init in ("pretrained", "random"):
            with open(os.path.join(out_dir, "single", init, "seed0", "task.json")) as f:
                task_info[init] = json.load(f)
        self.assertEqual(task_info["random"]["vocab_path"], vocab)
        self.assertEqual(task_info["random"]["encoder_config"], task_info["pretrained"]["encoder_config"])
        self.assertEqual(task_info["random"]["encoder_config"]["vocab_size"], 606)

    def _finetune_demo_module(self):
        import importlib.util

        spec = importlib.util.spec_from_file_location("finetune_demo", REPO_ROOT / "scripts" / "finetune_demo.py")
        demo = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(demo)
        return demo

    def test_finetune_demo_chooses_each_learning_rate_on_dev_only(self):
        demo = self._finetune_demo_module()

        def run(dev, test):
            return {"selection_metric": "f1", "best": {"dev": {"f1": dev, "accuracy": 1 - dev}},
                    "test": {"f1": test, "accuracy": test}}

        runs = {"1e-4": [run(0.5, 0.9), run(0.7, 0.9)], "3e-4": [run(0.7, 0.1), run(0.7, 0.1)],
                "1e-3": [run(0.9, 0.9), run(0.3, 0.9)]}
        chosen, dev_means = demo.choose_learning_rate(runs)
        self.assertEqual(chosen, "3e-4")  # highest mean dev f1 (0.7), whatever the test scores
        self.assertAllClose([dev_means[lr] for lr in runs], [0.6, 0.7, 0.6])
        tie = {"1e-3": [run(0.6, 0.0)], "1e-4": [run(0.6, 1.0)]}
        self.assertEqual(demo.choose_learning_rate(tie)[0], "1e-3")  # a tie goes to the earlier-listed LR

    def test_finetune_demo_script_learning_rate_search(self):
        from unittest import mock

        demo = self._finetune_demo_module()
        run_dir, out_dir = _tmpdir(self), _tmpdir(self)
        self._pretraining_run(run_dir)
        argv = ["finetune_demo.py", f"--pretrain_dir={run_dir}", f"--out_dir={out_dir}", f"--tasks_root={FIXTURES}",
                "--tasks=single", "--seeds=0", "--num_epochs=1", "--seq_len=24", "--inits=random",
                "--learning_rates=1e-4,2e-3", "--gin_file=finetune/electra.gin", "--gin_param=finetune.batch_size = 16"]
        with mock.patch.object(sys, "argv", argv):
            demo.main()
        with open(os.path.join(out_dir, "summary.json")) as f:
            summary = json.load(f)["single"]
        search = summary["learning_rate_search"]["random"]
        per_lr = {}
        for lr in ("1e-4", "2e-3"):
            with open(os.path.join(out_dir, "single", "random", f"lr{lr}", "seed0", "results.json")) as f:
                per_lr[lr] = json.load(f)
            self.assertAllClose(per_lr[lr]["hyperparameters"]["learning_rate"], float(lr))
            self.assertAllClose(search["dev_means"][lr], per_lr[lr]["best"]["dev"][per_lr[lr]["selection_metric"]])
        self.assertEqual(search["chosen"], max(search["dev_means"], key=lambda lr: (search["dev_means"][lr], lr == "1e-4")))
        self.assertEqual(summary["random"]["0"]["best"], per_lr[search["chosen"]]["best"])
        bad = argv[:-3] + ["--learning_rates=3e-4,fast"]
        with mock.patch.object(sys, "argv", bad), self.assertRaises(SystemExit):
            demo.main()

    def test_missing_checkpoint(self):
        with self.assertRaisesRegex(model_lib.CheckpointError, "holds no checkpoint"):
            model_lib.restore_encoder(_tmpdir(self))
        with self.assertRaisesRegex(model_lib.CheckpointError, "neither a checkpoint prefix"):
            model_lib.restore_encoder(os.path.join(_tmpdir(self), "ckpt-3"))


class CommandLineTest(tf.test.TestCase):

    def _run(self, *args):
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3")
        return subprocess.run([sys.executable, "-m", "plm_tf.finetune", *args], capture_output=True, text=True,
                              cwd=REPO_ROOT, env=env, timeout=300)

    def test_fine_tune_and_export(self):
        model_dir, export_dir = _tmpdir(self), os.path.join(_tmpdir(self), "export")
        result = self._run("--gin_file=testing/electra_tiny.gin", "--gin_file=finetune/electra.gin",
                           "--gin_param=finetune.num_epochs = 1", "--gin_param=finetune.seq_len = 24",
                           f"--task_dir={FIXTURES / 'pairs'}", f"--model_dir={model_dir}", f"--export_dir={export_dir}")
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        self.assertIn("Done. Best epoch 1", result.stdout)
        self.assertTrue(os.path.exists(os.path.join(model_dir, "results.json")))
        self.assertIn(f"  test predictions: {os.path.join(model_dir, 'test_predictions.tsv')}", result.stdout)
        self.assertIn(f"  model card: {os.path.join(model_dir, 'README.md')}", result.stdout)
        import tensorflow_text  # noqa: F401  (the export's tokenizer ops; other tests may not have imported it)

        served = tf.saved_model.load(export_dir)
        out = served.signatures["serving_default"](text_a=tf.constant(["the walk was happy"]),
                                                   text_b=tf.constant(["the walk was long"]))
        self.assertIn(out["label"].numpy()[0].decode(), ["False", "Neither", "True"])

    def test_bad_task_is_one_line_and_exit_2(self):
        folder = _tmpdir(self)
        pathlib.Path(folder, "train.tsv").write_text("text\tlabel\na\t0\nb\t1\n")
        pathlib.Path(folder, "dev.tsv").write_text("text\tlabel\na\t0\n")
        result = self._run("--gin_file=testing/electra_tiny.gin", "--gin_file=finetune/electra.gin",
                           f"--task_dir={folder}", f"--model_dir={_tmpdir(self)}")
        self.assertEqual(result.returncode, 2, result.stderr)
        errors = [line for line in result.stderr.splitlines() if line.startswith("plm_tf.finetune: error:")]
        self.assertLen(errors, 1)
        self.assertIn("has neither a 'sentence' column nor 'sentence1' and 'sentence2'", errors[0])
        self.assertNotIn("Traceback", result.stderr)


@pytest.mark.slow
class SharedSpamTest(tf.test.TestCase):
    """A tiny random-init model on the real spam task beats the majority class (slow: ~1 minute)."""

    def test_spam_beats_majority(self):
        task_dir = str(shared_data_path("tasks", "spam"))
        results = trainer.run_finetuning(
            TINY, ["finetune.seq_len = 64", "finetune.num_epochs = 3", "finetune.max_train_examples = 2000",
                   "finetune.learning_rate = 1e-3"], task_dir, _tmpdir(self))
        self.assertEqual(results["num_train_examples"], 2000)
        self.assertGreater(results["test"]["accuracy"], results["majority_baseline"]["test"]["accuracy"] + 0.05)


if __name__ == "__main__":
    tf.test.main()
