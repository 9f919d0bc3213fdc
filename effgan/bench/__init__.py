"""Benchmarks: op-level (effgan vs eager vs torch.compile) and end-to-end training steps."""
