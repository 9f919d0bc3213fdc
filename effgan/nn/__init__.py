"""effgan's modules: fused layers that mirror torch's constructors and state_dicts."""
from effgan.nn.adain import AdaIN
from effgan.nn.diff_augment import DiffAugment
from effgan.nn.instance_norm import FusedInstanceNorm2d, InstanceNormAct
from effgan.nn.losses import CycleGANGeneratorLoss, GANDiscriminatorLoss
from effgan.nn.mbconv import DepthwiseConvNormAct, DepthwiseSeparableConv, MBConv
from effgan.nn.squeeze_excite import SqueezeExcite

__all__ = [
    "AdaIN",
    "CycleGANGeneratorLoss",
    "DepthwiseConvNormAct",
    "DepthwiseSeparableConv",
    "DiffAugment",
    "FusedInstanceNorm2d",
    "GANDiscriminatorLoss",
    "InstanceNormAct",
    "MBConv",
    "SqueezeExcite",
]
