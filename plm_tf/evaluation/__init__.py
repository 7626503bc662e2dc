"""Held-out evaluation of pretraining: metrics (`metrics`), the evaluator (`evaluator`), loading any checkpoint
(`loading`), TensorBoard/progress reporting (`reporting`) and learning-curve pictures (`curves`)."""
