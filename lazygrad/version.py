"""The package version, in a module of its own: the runtime's and tuner's disk caches key on it,
and they sit below the package facade that re-exports it."""
__version__ = "0.1.0"
