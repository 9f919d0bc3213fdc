"""effgan's modules: fused layers that mirror torch's constructors and state_dicts."""
from effgan.nn.adain import AdaIN
from effgan.nn.instance_norm import FusedInstanceNorm2d, InstanceNormAct

__all__ = ["AdaIN", "FusedInstanceNorm2d", "InstanceNormAct"]
