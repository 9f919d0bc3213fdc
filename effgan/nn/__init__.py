"""effgan's modules: fused layers that mirror torch's constructors and state_dicts."""
from effgan.nn.adain import AdaIN
from effgan.nn.diff_augment import DiffAugment
from effgan.nn.instance_norm import FusedInstanceNorm2d, InstanceNormAct
from effgan.nn.losses import CycleGANGeneratorLoss, GANDiscriminatorLoss

__all__ = ["AdaIN", "CycleGANGeneratorLoss", "DiffAugment", "FusedInstanceNorm2d", "GANDiscriminatorLoss", "InstanceNormAct"]
