"""effgan's modules: fused layers that mirror torch's constructors and state_dicts."""
from effgan.nn.instance_norm import FusedInstanceNorm2d, InstanceNormAct

__all__ = ["FusedInstanceNorm2d", "InstanceNormAct"]
