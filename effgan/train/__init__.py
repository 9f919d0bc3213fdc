"""Training for effgan's GAN families: ``python -m effgan.train`` or :func:`train` from Python.

    from effgan.train import TrainConfig, train
    result = train(TrainConfig(model="dcgan", epochs=1))
    print(result.sample_grid)
"""
from effgan.train.config import CycleGANOptions, GANOptions, StyleGANOptions, TrainConfig, resolve
from effgan.train.trainer import MetricsFn, NonFiniteLossError, RunResult, train

__all__ = ["CycleGANOptions", "GANOptions", "MetricsFn", "NonFiniteLossError", "RunResult", "StyleGANOptions",
           "TrainConfig", "resolve", "train"]
