"""Held-out evaluation of pretraining: metrics (`metrics`), the evaluator (`evaluator`), TensorBoard/progress
reporting (`reporting`) and learning-curve pictures (`curves`)."""
