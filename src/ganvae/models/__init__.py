"""Model families. Importing this package registers every family and preset."""

from importlib import import_module

from .base import GenerativeModel, ModelConfig

# One module per family; each registers itself with registry.register_model.
FAMILIES = ["autoencoder", "vae", "gan", "vaegan"]
for _name in FAMILIES:
    try:
        import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as e:  # a family still being written; the others still work
        if e.name != f"{__name__}.{_name}":
            raise

__all__ = ["GenerativeModel", "ModelConfig"]
