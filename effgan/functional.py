"""One-line functional forms of effgan's fused ops (see effgan.ops for the references)."""
from effgan.ops import *  # noqa: F401,F403
from effgan.ops import __all__  # noqa: F401
