"""Serving SavedModels of plm_tf's pretrained models, with the tokenizer inside the graph.

- `serving`: the exported module (`ServingModule`), in-graph packing (`pack_segments`) and the signatures:
  ELECTRA `serving_default` / `serving_pairs` (replaced-token probabilities, tokens, score, truncated),
  `token_ids` (logits from input_word_ids / input_mask / input_type_ids) and, for every family, `encode` /
  `encode_pairs` (sequence output and a sentence embedding).
- `exporter`: `export_saved_model(model, tokenizer, output_dir, max_seq_length=128)` and
  `load_from_checkpoint(checkpoint, gin_files=None)` for trainer checkpoints.
- `python -m plm_tf.export --checkpoint=RUN_DIR --output=DIR`: the command line (`__main__`).

Load an export with `import tensorflow_text` first (the tokenizers use its ops), then `tf.saved_model.load(DIR)`.
"""
