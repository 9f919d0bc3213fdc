"""effgan: fused kernels and models for fast, lean GAN training.

The Triton kernels live in ``kernels/`` and ship as ``effgan.kernels``; the C++ sources in
``csrc/`` ship as data of ``effgan.csrc`` and are compiled on first use against the torch that
loads them (see ``effgan/_cpp_build.py``), so installing needs no compiler and no torch at build time.
"""
from setuptools import find_packages, setup

packages = find_packages(include=["effgan", "effgan.*"]) + ["effgan.kernels", "effgan.csrc"]

setup(
    name="effgan",
    version="0.1.0",
    description="Fused Triton/C++ kernels, models and training for fast GANs on one GPU",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=packages,
    package_dir={"effgan.kernels": "kernels", "effgan.csrc": "csrc"},
    package_data={"effgan.csrc": ["*.cpp", "*.h", "*.cu", "*.cuh"]},
    include_package_data=True,
    install_requires=[
        "torch>=2.4",
        "ninja",  # torch's C++ extension builder runs it (effgan/_cpp_build.py)
        "numpy",
        "scipy",
        "pyyaml",
        "tqdm",
        "pillow",
    ],
    extras_require={
        "triton": ["triton>=3.6"],
        "test": ["pytest", "pytest-benchmark", "triton>=3.6", "matplotlib", "tensorboard"],
        "logging": ["tensorboard"],
        "experiments": ["matplotlib"],
    },
)
