from setuptools import setup

setup(
    name="fastvae",
    version="0.1.0",
    description="Fused Triton kernels for training Variational Autoencoders",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    # The Triton kernels live in kernels/ but install as the sub-package fastvae.kernels,
    # so no generic top-level name `kernels` lands in site-packages.
    packages=["fastvae", "fastvae.data", "fastvae.ops", "fastvae.train", "fastvae.kernels"],
    package_dir={"fastvae": "fastvae", "fastvae.kernels": "kernels"},
    install_requires=[
        "torch>=2.8",
        "numpy",
        "tqdm",
        'triton>=3.0; platform_system == "Linux"',
    ],
    extras_require={
        "train": ["matplotlib"],  # the PNG plots of python -m fastvae.train and benchmarks/run.py
        "test": ["pytest>=7", "pytest-benchmark", "matplotlib"],
    },
    entry_points={"console_scripts": ["fastvae-train=fastvae.train:main"]},
)
