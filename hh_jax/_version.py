"""The package version (its own module, so that modules inside hh_jax read it without importing hh_jax)."""

__version__ = "0.1.0"
