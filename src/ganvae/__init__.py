"""ganvae: train, evaluate and compare autoencoders, VAEs, GANs and VAE-GANs side by side."""

__version__ = "0.1.0"
