"""Input shards (plm_tf.data.sharding): each pipeline builds a disjoint share, and the pipelines' batches
together are the single-pipeline stream of the same shard count."""
import os
import pathlib

import numpy as np
import tensorflow as tf

from plm_tf.data import pipelines
from plm_tf.data import sharding

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
CORPUS = str(FIXTURES / "austen_small.txt")
VOCAB = str(FIXTURES / "wordpiece_vocab.txt")
SMALL = dict(corpus_paths=CORPUS, tokenizer_kind="wordpiece", vocab_path=VOCAB, seq_len=64, shuffle_buffer=16)


def context(pipeline, pipelines_count=2, replicas=2):
    return tf.distribute.InputContext(num_input_pipelines=pipelines_count, input_pipeline_id=pipeline,
                                      num_replicas_in_sync=replicas)


def take(ds, n):
    it = iter(ds)
    return [{k: v.numpy() for k, v in next(it).items()} for _ in range(n)]


def rows(batches, key="input_ids"):
    return [tuple(row) for batch in batches for row in batch[key]]


def documents(path):
    text = open(path, encoding="utf-8").read().strip("\n")
    return [block.splitlines() for block in text.split("\n\n")]


class PlanTest(tf.test.TestCase):

    def test_pipeline_owns_consecutive_shards(self):
        plan = sharding.plan(32, num_shards=4, input_context=context(1, pipelines_count=2, replicas=4))
        self.assertEqual(plan.shards, (2, 3))
        self.assertEqual((plan.chunk_size, plan.per_replica_batch_size), (8, 8))
        self.assertEqual(sharding.plan(12).shards, (0,))  # no context: one pipeline, one shard
        self.assertEqual(sharding.plan(12, input_context=context(0, 3, 3)).num_shards, 3)  # default S = N

    def test_uneven_splits_are_refused(self):
        with self.assertRaisesRegex(sharding.ShardingError, "multiple of the number of workers"):
            sharding.plan(32, num_shards=3, input_context=context(0))
        with self.assertRaisesRegex(sharding.ShardingError, "global batch of 30 .* input_shards=4"):
            sharding.plan(30, num_shards=4)
        with self.assertRaisesRegex(sharding.ShardingError, "positive integer"):
            sharding.plan(8, num_shards=0)
        with self.assertRaisesRegex(pipelines.PipelineError, "input_shards=3"):
            pipelines.pretraining_dataset("electra", batch_size=8, input_shards=3, input_context=context(0),
                                          **SMALL)

    def test_shard_seed_keeps_shard_zero(self):
        self.assertEqual(sharding.shard_seed(7, 0), 7)
        self.assertNotEqual(sharding.shard_seed(7, 1), sharding.shard_seed(8, 0))
        self.assertEqual(sharding.shard_files(["a", "b", "c"], 1, 2), ["b"])
        self.assertIsNone(sharding.shard_files(["a"], 0, 2))  # fewer files than shards: split documents


class DocumentShardTest(tf.test.TestCase):

    def test_shards_partition_the_documents(self):
        lines = tf.data.TextLineDataset(CORPUS)
        expected = documents(CORPUS)
        for block_lines in (1, 7, 1024):  # documents that span blocks of the vectorised scan
            kept = []
            for shard in range(3):
                selected = sharding.select_shard_documents(lines, shard, 3, block_lines=block_lines)
                text = "\n".join(line.decode() for line in selected.as_numpy_iterator())
                own = [block.splitlines() for block in text.strip("\n").split("\n\n") if block.strip()]
                self.assertEqual(own, expected[shard::3])  # documents d ≡ shard (mod 3), in order
                kept += own
            self.assertCountEqual([tuple(d) for d in kept], [tuple(d) for d in expected])


class PipelineShardTest(tf.test.TestCase):

    def test_two_pipelines_split_the_stream_of_one(self):
        """Pipelines 0 and 1 of 2 (one replica each) give the two halves of every global batch of the
        single-pipeline stream with input_shards=2; their examples are disjoint."""
        kw = dict(SMALL, batch_size=8, input_shards=2)
        one = take(pipelines.pretraining_dataset("electra", **kw), 6)
        halves = [take(pipelines.pretraining_dataset("electra", input_context=context(p), **kw), 6)
                  for p in range(2)]
        self.assertEqual(halves[0][0]["input_ids"].shape, (4, 64))
        for k in range(6):
            for key in one[k]:
                self.assertAllEqual(one[k][key], np.concatenate([halves[0][k][key], halves[1][k][key]]), msg=key)
        self.assertEmpty(set(rows(halves[0])) & set(rows(halves[1])))

    def test_shards_split_documents_when_files_are_few(self):
        """One file, 2 shards: each shard's examples come from its own documents only."""
        tok = pipelines.load_tokenizer("wordpiece", VOCAB)
        docs = documents(CORPUS)
        shard_tokens = []
        for shard in range(2):
            own_text = "\n".join(line for doc in docs[shard::2] for line in doc)
            shard_tokens.append(set(tok.tokenize(tf.constant([own_text])).flat_values.numpy().tolist()))
        for shard in range(2):
            examples = pipelines.example_dataset("electra", [CORPUS], tok, 64, 0, 0, shuffle_files=False,
                                                 shard=shard, num_shards=2)
            seen = {t for ex in examples.as_numpy_iterator() for t in ex["input_ids"].tolist()}
            seen -= {tok.cls_id, tok.sep_id, tok.pad_id}
            self.assertTrue(seen <= shard_tokens[shard])
            self.assertNotEmpty(seen - shard_tokens[1 - shard])  # not simply the common words

    def test_shards_split_files_when_there_are_enough(self):
        folder = self.get_temp_dir()
        docs = documents(CORPUS)
        paths = []
        for i in range(2):
            paths.append(os.path.join(folder, f"part{i}.txt"))
            with open(paths[-1], "w", encoding="utf-8") as f:
                f.write("\n\n".join("\n".join(doc) for doc in docs[i::2]) + "\n")
        tok = pipelines.load_tokenizer("wordpiece", VOCAB)
        for shard in range(2):
            sharded = pipelines.example_dataset("electra", paths, tok, 64, 5, 0, shard=shard, num_shards=2)
            alone = pipelines.example_dataset("electra", [paths[shard]], tok, 64, sharding.shard_seed(5, shard), 0)
            self.assertAllEqual(np.stack([e["input_ids"] for e in sharded.as_numpy_iterator()]),
                                np.stack([e["input_ids"] for e in alone.as_numpy_iterator()]))

    def test_replicas_of_one_pipeline_take_consecutive_batches(self):
        kw = dict(SMALL, batch_size=8, input_shards=2)
        one = take(pipelines.pretraining_dataset("electra", **kw), 2)
        quarters = take(pipelines.pretraining_dataset("electra", input_context=context(1, 2, 4), **kw), 4)
        self.assertAllEqual(np.concatenate([q["input_ids"] for q in quarters[:2]]), one[0]["input_ids"][4:])
        self.assertAllEqual(np.concatenate([q["input_ids"] for q in quarters[2:]]), one[1]["input_ids"][4:])

    def test_sharded_iterator_resumes_exactly(self):
        ds = pipelines.pretraining_dataset("mlm_sop", input_context=context(1), batch_size=8, input_shards=4,
                                           **SMALL)
        it = iter(ds)
        for _ in range(3):
            next(it)
        path = tf.train.Checkpoint(iterator=it).write(os.path.join(self.get_temp_dir(), "it"))
        expected = [next(it)["input_ids"].numpy() for _ in range(20)]  # crosses an epoch of each shard
        fresh = iter(ds)
        tf.train.Checkpoint(iterator=fresh).read(path).assert_consumed()
        self.assertAllEqual(np.stack(expected), np.stack([next(fresh)["input_ids"].numpy() for _ in range(20)]))

    def test_static_records_split_between_pipelines(self):
        prefix = os.path.join(self.get_temp_dir(), "static", "mlm")
        paths, _ = pipelines.write_static_examples(prefix, "mlm", corpus_paths=CORPUS, tokenizer_kind="wordpiece",
                                                   vocab_path=VOCAB, seq_len=64, dupe_factor=1, num_shards=1)
        kw = dict(objective="mlm", seq_len=64, max_predictions_per_seq=9, batch_size=8, shuffle_buffer=0,
                  input_shards=2)
        one = take(pipelines.static_dataset(paths, **kw), 2)
        halves = [take(pipelines.static_dataset(paths, input_context=context(p), **kw), 2) for p in range(2)]
        for k in range(2):
            self.assertAllEqual(one[k]["input_ids"],
                                np.concatenate([halves[0][k]["input_ids"], halves[1][k]["input_ids"]]))
        self.assertEmpty(set(rows(halves[0])) & set(rows(halves[1])))
