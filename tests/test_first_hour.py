"""Issue 34, the user's first hour: what a new user types, run as they type it."""

import subprocess
import sys


def test_documented_names_are_reachable_after_a_plain_import_without_loading_torch():
    """README and docs/api.md write ganvae.models.VAE, ganvae.callbacks.Callback and
    ganvae.trainer.Trainer after `import ganvae`; the subpackages load when first asked for, so
    `import ganvae` itself still loads no torch."""
    code = ("import sys, ganvae; light = 'torch' not in sys.modules; "
            "from ganvae.models import VAE; from ganvae.callbacks import Callback; from ganvae.trainer import Trainer; "
            "ok = ganvae.models.VAE is VAE and ganvae.callbacks.Callback is Callback and ganvae.trainer.Trainer is Trainer; "
            "print(light, ok, 'models' in dir(ganvae))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "True", "True"]
    # a name that is no submodule is the usual AttributeError, not an ImportError
    r = subprocess.run([sys.executable, "-c", "import ganvae; ganvae.nope"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1 and "AttributeError: module 'ganvae' has no attribute 'nope'" in r.stderr
