"""Using a run's model on images: `ganvae complete` (inpainting), `translate`, `compress` and
`decompress`."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import BadInput, GanvaeError
from .options import CONTEXT, DEVICE, DEVICE_HELP, checkpoint_option, load_model, option, renamed, held_out_images


@click.command("complete", context_settings=CONTEXT)
@checkpoint_option
@click.argument("run", type=click.Path(path_type=Path))
@option("--mask", "mask_spec", default="center", show_default=True,
        help="center, half[:left|right|top|bottom], random-blocks[:COUNT], random-pixels[:FRACTION] "
             "(the share missing, 0.6 by default) or PATH.png (white = known).")
@option("--method", type=click.Choice(["auto", "latent-opt", "encoder", "gibbs"]), default="auto",
        show_default=True, help="latent-opt: search z (every model); encoder: one encode-decode; gibbs: "
                                "repeated encode-decode (encoder models).")
@option("-n", "--n", "n", type=click.IntRange(1, 100_000), default=64, show_default=True,
        help="Test images (the first N of the test split).")
@option("--opt-steps", "steps", type=click.IntRange(1), default=None, show_default="100",
        help="latent-opt: Adam steps on z.")
@option("--restarts", type=click.IntRange(1), default=None, show_default="4",
        help="latent-opt: codes searched per image.")
@option("--batch-size", "batch", type=click.IntRange(1), default=256, show_default=True,
        help="Images completed at once.")
@renamed("--batch", "--batch-size", "batch", type=click.IntRange(1))
@renamed("--steps", "--opt-steps", "steps", type=click.IntRange(1))
@option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
        help="Network forwards in bfloat16 (faster on CPUs with AVX-512 bf16 and on GPUs).")
@option("-o", "--output", type=click.Path(path_type=Path), required=True,
        help="A .png grid (masked | completion | original rows) or an .npz (x, mask, original).")
@option("--seed", type=int, default=0, show_default=True, help="Seed of random masks and starting codes.")
@option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_HELP)
@option("--quiet", is_flag=True, help="No progress bar.")
def complete_cmd(run, mask_spec, method, n, steps, restarts, batch, precision, output, seed, device, quiet) -> None:
    """Fill in the masked part of test images with RUN's model; the masks are saved beside the output.

    \b
    Examples:
      ganvae complete runs/vae --mask center -o done.png
      ganvae complete runs/dcgan --mask random-pixels:0.5 -o done.png
    """
    import numpy as np

    from ..files import atomic_write
    from ..images import save_grid
    from ..metrics.inpainting import hole_mse, hole_psnr
    from ..tasks.complete import (CompleteConfig, complete_images, make_masks, mean_fill, mean_image, parse_mask,
                                 resolve_method, triplet_grid)
    from ..trainer import run_dataset

    suffix = output.suffix.lower()
    if suffix not in (".png", ".npz"):
        raise BadInput(f"-o {output}: write a .png grid or an .npz array file")
    spec = parse_mask(mask_spec)
    changes = {k: v for k, v in (("steps", steps), ("restarts", restarts)) if v is not None}
    cfg = CompleteConfig(method=method, batch=batch, seed=seed, precision=precision, **changes)
    cfg.validate()
    model, run_cfg = load_model(run, device)
    name = resolve_method(model, method)
    ds = run_dataset(run_cfg)
    original = ds.test.x[:min(n, len(ds.test))]
    mask = make_masks(spec, len(original), ds.shape[1:], seed)                      # (N, 1, H, W), 1 = known
    mean = mean_image(ds)
    done8, seconds = complete_images(model, original, mask, name, cfg, mean, progress=not quiet)
    mask_png = output.with_name(output.stem + "-masks.png")
    if suffix == ".npz":
        atomic_write(output, lambda p: np.savez_compressed(open(p, "wb"), x=done8, mask=mask.astype(np.uint8),
                                                           original=original))
    else:
        save_grid(output, triplet_grid(done8, original, mask), nrow=8)
    save_grid(mask_png, (mask * 255).astype(np.uint8))
    base = mean_fill(original, mask, mean)
    click.echo(f"wrote {output} ({len(original)} test images, mask {spec.label}, {name}: "
               f"{1000 * seconds / len(original):.1f} ms per image) and its masks {mask_png}")
    click.echo(f"hole MSE {hole_mse(done8, original, mask):.4f} (PSNR {hole_psnr(done8, original, mask):.1f} dB) "
               f"against the originals; mean-image fill: {hole_mse(base, original, mask):.4f} "
               f"({hole_psnr(base, original, mask):.1f} dB)")


@click.command("translate", context_settings=CONTEXT)
@checkpoint_option
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("inputs", type=click.Path(path_type=Path), required=False)
@option("-o", "--output", type=click.Path(path_type=Path), required=True,
        help="A folder (one PNG per input, under the input's name), an .npz (x: uint8 (N, C, H, W)) or "
             "a .png grid (input | translation rows, and the true targets where the run's data has them).")
@option("--direction", type=click.Choice(["a2b", "b2a"]), default="a2b", show_default=True,
        help="a2b: input domain to target domain; b2a: back (cyclegan, unit).")
@option("-n", "--n", "n", type=click.IntRange(1), default=None,
        show_default="all of INPUTS; 64 of the run's test split without INPUTS", help="At most N inputs.")
@option("--batch-size", "batch", type=click.IntRange(1), default=256, show_default=True,
        help="Images translated at once.")
@renamed("--batch", "--batch-size", "batch", type=click.IntRange(1))
@option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_HELP)
def translate_cmd(run, inputs, output, direction, n, batch, device) -> None:
    """Translate images with RUN's translation model (pix2pix, unet-l1, cyclegan, unit).

    INPUTS is a folder of images or an .npz with an array x; they are scaled to the model's size
    and channels. Without INPUTS, the run's own test inputs are translated and, where the data is
    paired, scored against their true targets.

    \b
    Examples:
      ganvae translate runs/pix2pix -o translated.png
      ganvae translate runs/cyclegan sketches/ -o out.png --direction b2a
    """
    import numpy as np
    import torch

    from ..data import to_float, to_uint8
    from ..files import atomic_write
    from ..images import save_grid, save_png, translation_grid

    suffix = output.suffix.lower()
    if suffix not in (".png", ".npz") and output.exists() and not output.is_dir():
        raise BadInput(f"-o {output}: exists and is not a folder; give a folder, an .npz or a .png")
    model, run_cfg = load_model(run, device)
    if not model.translation:
        raise BadInput(f"{run}: its model ({run_cfg.get('preset', model.name)}) does not translate; "
                       "translation models: pix2pix, unet-l1, cyclegan, unit")
    if direction not in model.directions:
        raise BadInput(f"--direction {direction}: {model.name} translates {' and '.join(model.directions)} only")
    c = model.config
    c_in, c_out = (c.channels_a, c.channels) if direction == "a2b" else (c.channels, c.channels_a)
    targets = None
    if inputs is None:
        _, _, ds = held_out_images(run_cfg, 1, model.device)
        src, dst = (ds.test.a, ds.test.x) if direction == "a2b" else (ds.test.x, ds.test.a)
        x = src[:n or 64]
        names = [f"{i:05d}" for i in range(len(x))]
        targets = dst[:len(x)] if ds.test.paired else None
    else:
        from ..data.folder import read_images

        x, names = read_images(inputs, c.size, c_in)
        x, names = x[:n] if n else x, names[:n] if n else names
    if suffix not in (".png", ".npz") and output.is_dir():
        clash = [m for m in names if (output / f"{m}.png").exists()]
        if clash:
            raise BadInput(f"-o {output}: already holds {clash[0]}.png; choose another folder (nothing was written)")
    parts = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            xb = to_float(torch.from_numpy(x[i:i + batch])).to(model.device)
            parts.append(to_uint8(model.translate(xb, direction)).cpu().numpy())
    y = np.concatenate(parts)                                                   # (N, c_out, S, S)
    if suffix == ".npz":
        atomic_write(output, lambda p: np.savez_compressed(open(p, "wb"), x=y))
    elif suffix == ".png":
        save_grid(output, translation_grid(x, y, targets), nrow=8)
    else:
        output.mkdir(parents=True, exist_ok=True)
        for name, img in zip(names, y):
            (output / name).parent.mkdir(parents=True, exist_ok=True)
            save_png(output / f"{name}.png", img.transpose(1, 2, 0))
    click.echo(f"wrote {output} ({len(y)} images translated {direction}, {c_in} -> {c_out} channels)")
    if targets is not None:
        l1 = np.abs(y.astype(np.float64) - targets).mean() / 127.5
        ident = np.abs(x.astype(np.float64) - targets).mean() / 127.5 if c_in == c_out else None
        click.echo(f"L1 {l1:.4f} on [-1, 1] against the true targets"
                   + (f"; the identity map: {ident:.4f}" if ident is not None else ""))


@click.command("compress", context_settings=CONTEXT)
@checkpoint_option
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("inputs", type=click.Path(path_type=Path))
@option("-o", "--output", type=click.Path(path_type=Path), required=True,
        help="The compressed file to write (e.g. images.gvc): its size is the rate.")
@option("--bits", type=click.IntRange(1, 16), default=6, show_default=True,
        help="Bits per latent dimension of a model that is not a learned codec (before entropy coding).")
@option("--n-fit", type=click.IntRange(100), default=5000, show_default=True,
        help="Training images of the run whose codes fit the quantiser's range and the levels' histograms "
             "(models that are not a learned codec).")
@option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_HELP)
def compress_cmd(run, inputs, output, bits, n_fit, device) -> None:
    """Compress the images INPUTS (a folder or an .npz with x) with RUN's model into one file,
    OUTPUT, whose size is the rate. A learned codec (codec, codec-hyper, codec-gan) writes its
    own entropy-coded bitstream; any other model with an encoder has its codes quantised to
    --bits per dimension and entropy-coded under the histograms of its training codes (stored
    in the file). `ganvae decompress RUN OUTPUT -o DIR` decodes them, in the order of INPUTS
    (a folder's images sorted by path), named by their index.

    \b
    Examples:
      ganvae compress runs/codec photos/ -o photos.gvc
      ganvae compress runs/vae photos/ -o photos.gvc --bits 5
      ganvae decompress runs/codec photos.gvc -o decoded/
    """
    import numpy as np

    from ..bitstreams import compress, writes_own_bitstream
    from ..data.folder import read_images
    from ..files import atomic_write
    from ..trainer import run_dataset
    from ..visualize import needs_encoder

    model, cfg = load_model(run, device)
    needs_encoder(model, "compress")
    c = model.config
    x, _ = read_images(inputs, c.size, c.channels)
    if writes_own_bitstream(model):
        out = compress(model, x)
        how = f"{model.name}'s entropy-coded latents"
    else:
        ds = run_dataset(cfg)
        fit = np.sort(np.random.default_rng(0).choice(len(ds.train), size=min(n_fit, len(ds.train)), replace=False))
        out = compress(model, x, bits=bits, fit_x=ds.train.x[fit])
        how = f"{c.latent} dims x {bits} bits, entropy-coded"
    atomic_write(output, lambda p: p.write_bytes(out.data))
    click.echo(f"wrote {output}: {len(x):,} images in {len(out.data):,} bytes = {out.bytes_per_image:.1f} bytes per "
               f"image ({how}; {out.payload_per_image:.1f} without the file's {out.shared:,} bytes of header and "
               f"tables); the raw pixels: {x[0].size:,} bytes each")


@click.command("decompress", context_settings=CONTEXT)
@checkpoint_option
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("codes", type=click.Path(path_type=Path))
@option("-o", "--output", type=click.Path(path_type=Path), required=True,
        help="A folder for one PNG per image, or an .npz (x uint8 (N, C, H, W)).")
@option("--device", type=DEVICE, default="auto", show_default=True, help=DEVICE_HELP)
def decompress_cmd(run, codes, output, device) -> None:
    """Decode a file written by `ganvae compress` with the model of the RUN that wrote it (files
    of packed codes in an .npz, from earlier versions, are read too).

    \b
    Examples:
      ganvae decompress runs/codec photos.gvc -o decoded/
      ganvae decompress runs/vae photos.gvc -o decoded.npz
    """
    import numpy as np

    from ..bitstreams import decompress, kind
    from ..files import atomic_write
    from ..images import save_png
    from ..visualize import needs_encoder

    model, _ = load_model(run, device)
    needs_encoder(model, "decompress")
    if not codes.is_file():
        raise BadInput(f"{codes}: no such file; write one with `ganvae compress RUN INPUTS -o FILE`")
    data = codes.read_bytes()
    try:
        legacy = kind(data) == "npz"
    except BadInput as e:
        raise BadInput(f"{codes}: {e}") from None
    if legacy:
        y, names = _decompress_npz(model, run, codes)
    else:
        try:
            y = decompress(model, data)
        except GanvaeError as e:
            raise BadInput(f"{codes}: {e}") from None
        names = [f"{i:05d}" for i in range(len(y))]
    as_npz = output.suffix.lower() == ".npz"
    if not as_npz:
        if output.exists() and not output.is_dir():
            raise BadInput(f"-o {output}: exists and is not a folder; give a folder or an .npz")
        clash = [m for m in names if (output / f"{m}.png").exists()]
        if clash:
            raise BadInput(f"-o {output}: already holds {clash[0]}.png; choose another folder (nothing was written)")
    if as_npz:
        atomic_write(output, lambda p: np.savez_compressed(open(p, "wb"), x=y))
    else:
        for name, img in zip(names, y):
            (output / name).parent.mkdir(parents=True, exist_ok=True)
            save_png(output / f"{name}.png", img.transpose(1, 2, 0))
    click.echo(f"wrote {output} ({len(y):,} images decoded from {len(data):,} bytes)")


def _decompress_npz(model, run, codes):
    """The .npz of fixed-length packed codes that `compress` wrote before issue 35 -> (images, names)."""
    from ..metrics.codec import read_codes
    from ..models.base import weights_fingerprint
    from ..tasks.compress import decode_uint8

    f = read_codes(codes)
    latent = f.levels.shape[1]
    made_with = f.meta.get("run", "another run")
    if latent != model.config.latent:
        raise BadInput(f"{codes}: holds {latent}-dimensional codes; {run}'s model has {model.config.latent} "
                       f"(compressed with {made_with})")
    # another model's decoder turns the same levels into garbage: the codes name the weights
    # they were made with (files from before that carry no fingerprint and are decoded as asked)
    if f.meta.get("weights") not in (None, weights_fingerprint(model)):
        raise BadInput(f"{codes}: compressed with another model ({made_with}); {run}'s weights differ, so its "
                       f"decoder would give other images: decompress with the run that compressed it")
    names = f.meta.get("names") or [f"{i:05d}" for i in range(len(f.levels))]
    return decode_uint8(model, f.quantizer.decode(f.levels)), names
