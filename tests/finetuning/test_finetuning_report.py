"""What a fine-tuning run shows its user: progress within an epoch, the majority-class baseline beside every
dev score (and one line when the kept model learned only that class), test predictions in a TSV file, the
declared label set (`finetune.label_names`) and a model card."""
import csv
import json
import os
import pathlib
import re
import tempfile

import numpy as np
import tensorflow as tf

from plm_tf.finetuning import trainer

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
TINY = ["testing/electra_tiny.gin", "finetune/electra.gin"]
FAST = ["finetune.seq_len = 24", "finetune.batch_size = 16", "finetune.learning_rate = 3e-3"]


def _read_tsv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[0], rows[1:]


class FinetuneReportTest(tf.test.TestCase):

    def test_progress_baseline_predictions_label_order_and_card(self):
        model_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
        lines = []
        # 64 train examples, batch 16: 4 updates per epoch, a progress line after update 2 of each epoch.
        results = trainer.run_finetuning(
            TINY, FAST + ["finetune.num_epochs = 2", "finetune.log_every = 2", "finetune.label_names = ['1', '0']"],
            str(FIXTURES / "single"), model_dir, print_fn=lines.append)

        progress = [line for line in lines if re.match(r"epoch \d/2 step ", line)]
        self.assertLen(progress, 2)
        for epoch, line in enumerate(progress, start=1):
            self.assertRegex(line, rf"^epoch {epoch}/2 step 2/4 \| loss \d+\.\d{{4}} \| lr \d\.\d\de-\d\d \| "
                                   r"[\d,]+\.\d examples/s \| ETA \d+m\d\ds \(training\)$")
        # Every dev score is printed beside the majority-class baseline's, which results.json also holds.
        baseline = results["majority_baseline"]["dev"]
        epoch_lines = [line for line in lines if re.match(r"epoch \d/2 \| ", line)]
        self.assertLen(epoch_lines, 2)
        for record, line in zip(results["epochs"], epoch_lines):
            for name, value in record["dev"].items():
                self.assertIn(f"{name} {value:.4f} (majority {baseline[name]:.4f})", line)
        with open(os.path.join(model_dir, "results.json")) as f:
            self.assertEqual(json.load(f)["majority_baseline"]["dev"], baseline)
        # The baseline always predicts the most frequent train label; the declared order ("1" is class 0) is
        # the classifier's and breaks ties.
        dev_labels = [row[1] for row in _read_tsv(FIXTURES / "single" / "dev.tsv")[1]]
        counts = {label: dev_labels.count(label) for label in ("1", "0")}
        train_labels = [row[1] for row in _read_tsv(FIXTURES / "single" / "train.tsv")[1]]
        majority_label = max(("1", "0"), key=train_labels.count)  # ties: the first declared class
        self.assertAlmostEqual(baseline["accuracy"], counts[majority_label] / len(dev_labels))
        with open(os.path.join(model_dir, "task.json")) as f:
            self.assertEqual(json.load(f)["label_names"], ["1", "0"])

        # Test predictions of the best epoch: index, predicted label, one probability per declared class.
        path = os.path.join(model_dir, "test_predictions.tsv")
        self.assertEqual(results["test_predictions"], path)
        self.assertIn(f"test predictions (best epoch): {path}", lines)
        header, rows = _read_tsv(path)
        self.assertEqual(header, ["index", "prediction", "probability_1", "probability_0"])
        test_labels = [row[1] for row in _read_tsv(FIXTURES / "single" / "test.tsv")[1]]
        self.assertLen(rows, len(test_labels))
        self.assertEqual([int(row[0]) for row in rows], list(range(len(test_labels))))
        probabilities = np.array([[float(v) for v in row[2:]] for row in rows])
        self.assertAllClose(probabilities.sum(-1), np.ones(len(rows)), atol=1e-5)
        self.assertEqual([row[1] for row in rows], [["1", "0"][i] for i in probabilities.argmax(-1)])
        accuracy = np.mean([row[1] == label for row, label in zip(rows, test_labels)])
        self.assertAlmostEqual(results["test"]["accuracy"], accuracy)

        card = open(os.path.join(model_dir, "README.md")).read()
        for fact in ("# single classifier", "| labels | 1, 0 |", "| train examples | 64 |",
                     f"| accuracy | {results['best']['dev']['accuracy']:.4g} |", "test_predictions.tsv",
                     f"load_finetuned({model_dir!r})", "serving_default'](text=tf.constant"):
            self.assertIn(fact, card)

    def test_a_model_that_only_learned_the_majority_class_says_so(self):
        folder = tempfile.mkdtemp(dir=self.get_temp_dir())
        # Every text is the same: the best a model can do is the train prior, "no" (3 of 4).
        with open(os.path.join(folder, "train.tsv"), "w") as f:
            f.write("sentence\tlabel\n" + "the same words\tno\n" * 12 + "the same words\tyes\n" * 4)
        with open(os.path.join(folder, "dev.tsv"), "w") as f:
            f.write("sentence\tlabel\nthe same words\tno\nthe same words\tyes\nthe same words\tno\n")
        lines = []
        model_dir = tempfile.mkdtemp(dir=self.get_temp_dir())
        results = trainer.run_finetuning(
            TINY, FAST + ["finetune.num_epochs = 3", "finetune.batch_size = 4", "finetune.warmup_proportion = 0.0"],
            folder, model_dir, print_fn=lines.append)
        self.assertTrue(all(record["majority_only"] for record in results["epochs"]))
        self.assertTrue(results["best"]["majority_only"])
        self.assertEqual(results["best"]["dev"], results["majority_baseline"]["dev"])
        warnings = [line for line in lines if line.startswith("Warning:")]
        self.assertEqual(warnings, [
            "Warning: the best epoch (1) predicts the majority class 'no' for every dev example, so its dev scores "
            "are the majority baseline's: it learned nothing beyond the class frequencies (train longer, or change "
            "the learning rate or the initial checkpoint)."])
        self.assertFalse(os.path.exists(os.path.join(model_dir, "test_predictions.tsv")))  # no test split
        self.assertIn("majority class for every dev example", open(os.path.join(model_dir, "README.md")).read())

    def test_log_every_must_be_positive(self):
        with self.assertRaisesRegex(trainer.FinetuningError, "finetune.log_every must be at least 1, got 0"):
            trainer.run_finetuning(TINY, FAST + ["finetune.log_every = 0"], str(FIXTURES / "single"),
                                   tempfile.mkdtemp(dir=self.get_temp_dir()))


if __name__ == "__main__":
    tf.test.main()
