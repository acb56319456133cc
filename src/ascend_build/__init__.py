"""ascend-build: container images for Huawei Ascend NPUs from a folder of installers."""

__version__ = "0.1.0"
