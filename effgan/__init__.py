"""effgan: fused kernels, models and training for fast, lean GANs.

Importing effgan never needs Triton, a compiler or a GPU: backends load on first use.
"""
from effgan import functional, nn, ops
from effgan._backend import available_impls

__version__ = "0.1.0"
__all__ = ["functional", "nn", "ops", "available_impls", "__version__"]
