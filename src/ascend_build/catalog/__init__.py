"""The package catalog: identify the files of a working directory, verify them, select what a
target needs and check that it fits together (`check`)."""
from .check import check

__all__ = ["check"]
