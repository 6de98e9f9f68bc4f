"""Model families. Importing this package registers every family and preset."""

from . import aae, autoencoder, bigan, cyclegan, gan, pix2pix, unit, vae, vaegan  # noqa: F401  (each registers itself)
from .base import GenerativeModel, ModelConfig

__all__ = ["GenerativeModel", "ModelConfig"]
