"""Model families. Importing this package registers every family and preset.

Every family's class and its Config are importable from here by their own names:

    from ganvae.models import VAE, VAEConfig
    model = VAE(VAEConfig(channels=1, size=28, latent=16))
    x = model.sample(8, seed=0)            # (8, 1, 28, 28) in [-1, 1]

Presets (beta-vae, dcgan, wgan-gp, ...) are configs of these classes, not classes of their own:
ganvae.list_models() names them with their family.
"""

from .aae import AAE, AAEConfig
from .autoencoder import AE, AEConfig
from .base import ClassConditionalConfig, GenerativeModel, ModelConfig
from .bigan import BiGAN, BiGANConfig
from .codec import Codec, CodecConfig
from .codec_gan import CodecGAN, CodecGANConfig
from .cyclegan import CycleGAN, CycleGANConfig
from .gan import GAN, GANConfig
from .pix2pix import Pix2Pix, Pix2PixConfig
from .translation import TranslationConfig, TranslationModel
from .unit import UNIT, UNITConfig
from .vae import VAE, VAEConfig
from .vaegan import VAEGAN, VAEGANConfig

# the name a reader looks for first; the registry's (and the class's) is AE
Autoencoder = AE

__all__ = [
    "GenerativeModel", "ModelConfig", "ClassConditionalConfig", "TranslationModel", "TranslationConfig",
    "AE", "Autoencoder", "AEConfig", "VAE", "VAEConfig", "AAE", "AAEConfig", "GAN", "GANConfig",
    "BiGAN", "BiGANConfig", "VAEGAN", "VAEGANConfig", "Pix2Pix", "Pix2PixConfig", "CycleGAN", "CycleGANConfig",
    "UNIT", "UNITConfig", "Codec", "CodecConfig", "CodecGAN", "CodecGANConfig",
]
