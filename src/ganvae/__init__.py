"""ganvae: train, evaluate and compare autoencoders, VAEs, GANs and VAE-GANs side by side.

    import ganvae
    run_dir, summary = ganvae.train("vae", "shapes", steps=500)
    scores = ganvae.evaluate(run_dir, n=2000)          # what `ganvae eval --json` writes
    model = ganvae.load(run_dir)            # a GenerativeModel, from safetensors, no pickle
    x = model.sample(16, seed=0)            # (16, C, H, W) in [-1, 1], the same for the same seed
    ganvae.save_grid(x, "samples.png")      # or ganvae.to_pil(x): one PIL image each
    done = ganvae.complete(model, x, mask)  # mask (16, 1, H, W), 1 = known pixel
    ganvae.train("dcgan", "shapes", steps=500, nets={"g": ganvae.net(MyGenerator, latent=64)})
    results = ganvae.compare(["vae", "dcgan"], "shapes", steps=500, out="cmp")
    ganvae.list_models()                    # [{"name", "family", "description"}, ...]

The model classes are in ganvae.models (ganvae.models.VAE, GAN, ...). docs/api.md has an
example of each function.
"""

# ganvae.api imports only the standard library at its top (torch and the rest load on the
# first call that needs them), so `import ganvae` stays fast while editors and type checkers
# see the real signatures.
import os as _os

# Before torch (and its OpenMP runtime, libgomp, which reads this once as it loads): a thread
# that waits at the end of a parallel region spins at most 1,000 times before it sleeps,
# instead of libgomp's default 300,000. With two jobs on one 2-core machine, the spinning
# threads of each stole the cores the other's working threads needed: 63-70 img/s each
# against 290-370 alone (dcgan); with 1,000 they keep 161 each, for about 7% of the speed
# alone (BENCHMARKS.md, "Threads"). A value the user set wins.
_os.environ.setdefault("GOMP_SPINCOUNT", "1000")

from .api import compare, evaluate, list_models, save_grid, to_pil, train  # noqa: E402

__version__ = "0.1.0"


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


def __getattr__(name: str):
    """`ganvae.models.VAE`, `ganvae.callbacks.Callback`, `ganvae.trainer.Trainer` after a plain
    `import ganvae`, as README and docs/api.md write them: a subpackage is imported the first
    time it is asked for (PEP 562), so `import ganvae` and `ganvae --help` stay light."""
    import importlib

    if name.startswith("_"):
        raise AttributeError(f"module 'ganvae' has no attribute {name!r}")
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":   # the submodule exists; something it needs is missing
            raise
        raise AttributeError(f"module 'ganvae' has no attribute {name!r}") from None


def __dir__() -> list[str]:
    import pkgutil

    return sorted(set(globals()) | {m.name for m in pkgutil.iter_modules(__path__)})


__all__ = ["train", "evaluate", "compare", "list_models", "load", "net", "load_dataset", "complete", "to_pil",
           "save_grid", "__version__"]
