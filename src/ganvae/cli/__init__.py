"""The `ganvae` command line.

Exit codes: 0 success, 2 bad usage or bad input, 1 anything else, 130 interrupted. Errors are
one line on stderr; `ganvae --debug ...` shows the traceback too.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings

import click

from .. import __version__
from ..errors import GanvaeError
from .compare import compare_cmd, report_cmd
from .datasets import datasets
from .evaluate import augment_eval_cmd, disentangle_cmd, eval_cmd, probe_cmd
from .evaluator import evaluator_group
from .inspect import embed_cmd, interpolate_cmd, reconstruct_cmd, sample_cmd, traverse_cmd
from .options import ARGS, CONTEXT, DeviceType, option, warning_line
from .tasks import complete_cmd, compress_cmd, decompress_cmd, translate_cmd
from .train import config_cmd, models_cmd, train_cmd

__all__ = ["cli", "main", "DeviceType"]


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="ganvae")
@option("--debug", is_flag=True, help="Show the full traceback on errors.")
def cli(debug: bool) -> None:
    """Train, evaluate and compare autoencoders, VAEs, GANs and VAE-GANs side by side.

    Threads: one per core (OMP_NUM_THREADS sets it; give each of several jobs on one machine
    cores / jobs). GOMP_SPINCOUNT=1000 is set unless given, so jobs sharing the cores do not
    starve each other.

    \b
    Examples:
      ganvae compare --data fashion-mnist --models ae,vae,dcgan,vaegan --budget 90s --out cmp
      ganvae train vae --data fashion-mnist --epochs 3 --out runs/vae
      ganvae sample runs/vae -n 64 -o samples.png
    """


# `ganvae --help` lists the commands by name, whatever the order here
for _command in (datasets, train_cmd, models_cmd, config_cmd, sample_cmd, reconstruct_cmd, interpolate_cmd,
                 traverse_cmd, embed_cmd, complete_cmd, translate_cmd, eval_cmd, augment_eval_cmd, probe_cmd,
                 compress_cmd, decompress_cmd, disentangle_cmd, compare_cmd, report_cmd, evaluator_group):
    cli.add_command(_command)
del _command


# ---------------------------------------------------------------------------- entry point

def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (the console script exits with it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    ARGS[:] = args   # in place: the commands' modules read this very list
    # --debug works wherever it is placed (and GANVAE_DEBUG=1 without it): taken out here, so
    # no subcommand has to declare it
    debug = "--debug" in args or os.environ.get("GANVAE_DEBUG", "") not in ("", "0")
    args = [a for a in args if a != "--debug"]
    warnings.showwarning = warning_line
    try:
        code = cli.main(args=args, prog_name="ganvae", standalone_mode=False)
        # (a command that ends with click's Exit(n), as train --nproc with its job's code, returns n)
        return code if isinstance(code, int) else 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.UsageError as e:   # a bad option or argument: one line, and where the help is
        where = e.ctx.command_path if e.ctx is not None else "ganvae"
        print(f"ganvae: error: {e.format_message()} (see {where} --help)", file=sys.stderr)
        return e.exit_code
    except click.ClickException as e:  # click's other errors (a file it could not open): its message
        print(f"ganvae: error: {e.format_message()}", file=sys.stderr)
        return e.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        print("ganvae: interrupted", file=sys.stderr)
        return 130
    except GanvaeError as e:
        if debug:
            traceback.print_exc()
        if not e.quiet:   # an error every rank of a DDP job shares: rank 0 says it
            print(f"ganvae: {e.label}: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:   # a file the system would not read or write: the path given, and why
        if debug:
            traceback.print_exc()
        if e.filename is None:
            print(f"ganvae: error: {e.strerror or e}", file=sys.stderr)
            return 1
        from ..files import a_file_in_the_way

        blocker = a_file_in_the_way(e.filename)
        why = f"{blocker} is a file, not a folder" if blocker else (e.strerror or str(e))
        print(f"ganvae: error: {e.filename}: {why}; check the path", file=sys.stderr)
        return 2
    except Exception as e:  # a bug or an unexpected environment problem: still one line
        if debug:
            traceback.print_exc()
        print(f"ganvae: error: {type(e).__name__}: {e} (run with --debug for the traceback)", file=sys.stderr)
        return 1
