"""effgan's Triton kernels and their host launchers, one module per op.

Imported lazily by effgan._backend: whether Triton uses its CPU interpreter is fixed when a
kernel is decorated, so TRITON_INTERPRET must be set before this package is first imported.
"""
