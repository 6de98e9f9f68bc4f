"""ganvae: train, evaluate and compare autoencoders, VAEs, GANs and VAE-GANs side by side.

    import ganvae
    run_dir, summary = ganvae.train("vae", "shapes", steps=500)
    model = ganvae.load(run_dir)            # a GenerativeModel, from safetensors, no pickle
    x = model.sample(16)                    # (16, C, H, W) in [-1, 1]
    done = ganvae.complete(model, x, mask)  # mask (16, 1, H, W), 1 = known pixel
    ganvae.train("dcgan", "shapes", steps=500, nets={"g": ganvae.net(MyGenerator, latent=64)})
"""

__version__ = "0.1.0"


def train(*args, **kwargs):
    """Train a model; see ganvae.trainer.train (the same as `ganvae train`)."""
    from .trainer import train as _train

    return _train(*args, **kwargs)


def net(cls, **kwargs) -> dict:
    """A user's nn.Module class and its constructor arguments as a `nets` entry, to train a
    model with one's own generator, discriminator, encoder or decoder; see ganvae.custom:

        ganvae.train("dcgan", "fashion-mnist", steps=1000, nets={"g": ganvae.net(MyGenerator, latent=64)})
    """
    from .custom import net as _net

    return _net(cls, **kwargs)


def load(run, device: str = "cpu"):
    """The trained model of a run directory (or a model directory written by save_pretrained)."""
    from .trainer import load_run

    return load_run(run, device=device)[0]


def load_dataset(*args, **kwargs):
    """Load a --data spec; see ganvae.data.load_dataset."""
    from .data import load_dataset as _load

    return _load(*args, **kwargs)


def complete(model, x, mask, method: str = "auto", **kwargs):
    """Fill the holes (mask 0) of images x with a trained model; see ganvae.tasks.complete.complete."""
    from .tasks.complete import complete as _complete

    return _complete(model, x, mask, method=method, **kwargs)
