"""Fine-tuning and evaluation on GLUE-style tasks (see `plm_tf.finetune` for the command line).

    tasks         TSV folders and prepared TFDS glue configs → `Task` (splits, label set), `TaskDataError`
    features      raw text → input_ids / input_mask / segment_ids, in graph (training and export share it)
    model         `ClassifierModel` = encoder + `ClassificationHead`; `restore_encoder` from a pretraining run
    optimization  ELECTRA's layer-wise LR decay and optimizers with per-variable LR multipliers
    metrics       accuracy, F1, Matthews, Pearson, Spearman
    trainer       the gin-configured run: train, evaluate every epoch, keep the best, write results.json
    export        the fine-tuned classifier as a raw-text SavedModel
"""
