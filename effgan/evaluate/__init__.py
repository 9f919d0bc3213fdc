"""``python -m effgan.evaluate``: metrics of a training run's checkpoint (see effgan.metrics)."""
from effgan.evaluate.checkpoint_eval import EvaluationOptions, evaluate_checkpoint

__all__ = ["EvaluationOptions", "evaluate_checkpoint"]
