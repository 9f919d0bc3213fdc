"""effgan.experiments: comparative experiments run from the command line.

``python -m effgan.experiments.generators``: CycleGAN generators compared on the cans data.
"""
