"""camsight: self-hosted video analytics that explains its results."""

__version__ = "0.1.0"
