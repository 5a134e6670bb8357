"""Exception types. Every user-facing failure is an ``Nn2mipError`` with a one-line message."""


class Nn2mipError(Exception):
    """Base class: the CLI prints ``str(err)`` on one line and exits non-zero."""


class UnsupportedLayerError(Nn2mipError):
    """A model contains a layer or operator that nn2mip cannot encode."""


class InvalidNetworkError(Nn2mipError):
    """Weights are malformed (NaN, inf, shape mismatch)."""


class InvalidInputError(Nn2mipError):
    """An input point, region or parameter is out of range or has the wrong size."""


class ModelFileError(Nn2mipError):
    """A model file is missing, unreadable or of an unknown format."""


class PropertyFileError(Nn2mipError):
    """A VNN-LIB property or counterexample file is missing or malformed (message has the line)."""
