"""The CLI skeleton: help, version, exit codes, one-line errors."""

import click
import numpy as np
import pytest

from ganvae import __version__
from ganvae.cli import cli
from tests.conftest import run_subprocess


def _commands(group, prefix=()):
    yield prefix
    for name, cmd in getattr(group, "commands", {}).items():
        yield from _commands(cmd, prefix + (name,))


@pytest.mark.parametrize("path", list(_commands(cli)), ids=lambda p: " ".join(p) or "ganvae")
def test_help_on_every_command(run_cli, path):
    code, out, _ = run_cli(*path, "--help")
    assert code == 0 and "Usage: ganvae" in out


def test_version():
    r = run_subprocess("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"ganvae, version {__version__}"


def test_console_script_installed():
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    exe = shutil.which("ganvae") or str(Path(sys.executable).parent / "ganvae")
    r = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "datasets" in r.stdout


def test_unknown_command_is_usage_error():
    r = run_subprocess("frobnicate")
    assert r.returncode == 2 and "No such command" in r.stderr


def test_bad_option_value_is_usage_error(tmp_path):
    r = run_subprocess("datasets", "show", "shapes", "-o", tmp_path / "g.png", "--n", "0")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_bad_input_one_line_exit_2():
    r = run_subprocess("datasets", "show", "npz:/no/such.npz", "-o", "/tmp/x.png")
    assert r.returncode == 2
    assert r.stderr == "ganvae: error: /no/such.npz: no such file\n"


def test_debug_shows_traceback():
    r = run_subprocess("--debug", "datasets", "show", "npz:/no/such.npz", "-o", "/tmp/x.png")
    assert r.returncode == 2 and "Traceback" in r.stderr and "no such file" in r.stderr


def test_output_must_be_png(run_cli, tmp_path):
    code, _, err = run_cli("datasets", "show", "shapes:n=10,n_test=2", "-o", tmp_path / "g.jpg")
    assert code == 2 and "must be a .png" in err


def test_show_writes_a_grid(run_cli, tmp_path):
    import numpy as np
    from PIL import Image

    code, out, _ = run_cli("datasets", "show", "shapes:n=50,n_test=10", "-o", tmp_path / "g.png",
                           "--n", 9, "--split", "test")
    assert code == 0 and "9 test images of 1x28x28" in out
    g = np.asarray(Image.open(tmp_path / "g.png"))
    assert g.shape == (2 + 3 * 30, 2 + 3 * 30)
    assert g[:2].max() == 0 and g.max() > 100  # black padding, bright shapes


def test_usage_errors_are_one_line_naming_the_help():
    r = run_subprocess("train", "--xyzzy")
    assert r.returncode == 2
    assert r.stderr.strip() == "ganvae: error: No such option '--xyzzy'. (see ganvae train --help)"
    r = run_subprocess("frobnicate")
    assert r.stderr.strip() == "ganvae: error: No such command 'frobnicate'. (see ganvae --help)"


@pytest.mark.parametrize("where", ["front", "back", "env"])
def test_debug_works_wherever_it_is_placed(where):
    import os

    args = ["train", "dcgan", "--data", "nope:x", "--steps", "1"]
    env = None
    if where == "front":
        args = ["--debug", *args]
    elif where == "back":
        args = [*args, "--debug"]
    else:
        env = {**os.environ, "GANVAE_DEBUG": "1"}
    r = run_subprocess(*args, env=env)
    assert r.returncode == 2
    assert "Traceback (most recent call last)" in r.stderr                      # the traceback ...
    assert r.stderr.strip().splitlines()[-1].startswith("ganvae: error: --data 'nope:x': unknown dataset")


def test_python_dash_m_ganvae_runs_the_cli():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "ganvae", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == f"ganvae, version {__version__}"


def test_a_missing_data_dir_or_resume_directory_is_named(tmp_path):
    r = run_subprocess("train", "vae", "--data", "fashion-mnist", "--data-dir", tmp_path / "nope", "--steps", "1")
    assert r.returncode == 2
    assert r.stderr.startswith(f"ganvae: error: --data-dir {tmp_path / 'nope'}: no such directory")
    r = run_subprocess("train", "--resume", tmp_path / "gone")
    assert r.returncode == 2 and r.stderr.strip() == f"ganvae: error: --resume {tmp_path / 'gone'}: no such directory"


def test_train_reads_its_data_from_data_dir(tmp_path, tiny_idx_dir):
    # --data-dir reaches the data config (it once ended as an unknown TrainConfig key)
    r = run_subprocess("train", "ae", "--data", "mnist", "--data-dir", tiny_idx_dir, "--steps", "1",
                       "--batch-size", "4", "--set", "width=4", "--set", "latent=4", "--out", tmp_path / "r",
                       "--quiet", "--val-split", "0")
    assert r.returncode == 0, r.stderr
    import json

    assert json.loads((tmp_path / "r" / "config.json").read_text())["data"]["data_dir"] == str(tiny_idx_dir)


def test_models_lists_every_preset_once_and_as_json(run_cli):
    import json

    from ganvae.registry import preset_names

    code, out, _ = run_cli("models")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == preset_names()
    code, out, _ = run_cli("models", "--json")
    rows = json.loads(out)
    assert [r["name"] for r in rows] == preset_names()
    assert {r["name"]: r["family"] for r in rows}["wgan-gp"] == "gan"


def test_config_prints_a_preset_default_that_trains_back(run_cli, tmp_path):
    import json

    code, out, _ = run_cli("config", "wgan-gp")
    assert code == 0
    cfg = json.loads(out)
    assert cfg["model"]["loss"] == "wasserstein" and cfg["model"]["reg"] == "gp" and cfg["model"]["n_critic"] == 5
    assert cfg["train"]["batch_size"] == 64 and "spec" not in cfg["data"]
    cfg["model"].update(width=4, latent=4)
    (tmp_path / "c.json").write_text(json.dumps(cfg))
    assert cfg["preset"] == "wgan-gp"    # MODEL may be left out: the file names it
    code, _, err = run_cli("train", "--data", "shapes:n=128,n_test=16", "--config", tmp_path / "c.json",
                           "--steps", 1, "--batch-size", 8, "--quiet", "--out", tmp_path / "r")
    assert code == 0, err
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert saved["model"]["width"] == 4 and saved["model"]["gp_weight"] == cfg["model"]["gp_weight"]
    code, _, err = run_cli("config", "nosuch")
    assert code == 2 and "nosuch" in err


def test_a_run_config_json_reproduces_the_run_and_file_errors_name_the_file(run_cli, tmp_path):
    """train --config RUN/config.json alone trains the same run again (preset, data and every
    setting from the file; the same weights, bit for bit); options still win over the file; a
    bad key or value in a file names the file and the section, not --set."""
    import json

    common = ("--quiet", "--steps", 3, "--batch-size", 16)
    code, _, err = run_cli("train", "vae", "--data", "shapes:n=256,n_test=64", "--set", "width=4", "--set", "latent=4",
                           "--set", "beta=2", "--out", tmp_path / "a", *common)
    assert code == 0, err
    code, _, err = run_cli("train", "--config", tmp_path / "a" / "config.json", "--out", tmp_path / "b", "--quiet")
    assert code == 0, err
    for f in ("config.json", "model/model.safetensors"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    code, _, err = run_cli("train", "--config", tmp_path / "a" / "config.json", "--out", tmp_path / "c", "--quiet",
                           "--steps", 2, "--set", "beta=3")
    assert code == 0, err
    saved = json.loads((tmp_path / "c" / "config.json").read_text())
    assert (saved["train"]["steps"], saved["model"]["beta"], saved["model"]["width"]) == (2, 3.0, 4)
    for text, msg in (('{"model": {"widht": 3}}', "model: unknown key 'widht' for VAEConfig"),
                      ('{"train": {"steps": -1}}', ": train.steps -1: must be positive"),
                      ('{"data": {"val_split": "lots"}}', ": data.val_split 'lots': give a fraction")):
        (tmp_path / "bad.json").write_text(text)
        code, _, err = run_cli("train", "vae", "--data", "shapes", "--config", tmp_path / "bad.json",
                               "--out", tmp_path / "d")
        assert code == 2 and err.startswith(f"ganvae: error: --config {tmp_path / 'bad.json'}: ") and msg in err, err
        assert not (tmp_path / "d").exists()


def test_an_unknown_key_names_the_preset_typed(run_cli, tmp_path):
    code, _, err = run_cli("train", "wgan-gp", "--data", "shapes", "--steps", 1, "--set", "nope=1",
                           "--out", tmp_path / "r")
    assert code == 2 and err.startswith("ganvae: error: --set for wgan-gp: unknown key 'nope' for GANConfig")


def _with_device():
    for path in _commands(cli):
        cmd = cli
        for name in path:
            cmd = cmd.commands[name]
        if any("--device" in getattr(p, "opts", ()) for p in cmd.params):
            yield path


@pytest.mark.parametrize("path", list(_with_device()), ids=" ".join)
def test_every_device_option_is_checked_the_same_way(run_cli, path):
    code, _, err = run_cli(*path, "--device", "tpu")
    assert code == 2
    assert err.strip() == (f"ganvae: error: Invalid value for '--device': 'tpu': choose auto, cpu, cuda or cuda:N "
                           f"(see ganvae {' '.join(path)} --help)")


def test_every_device_option_defaults_to_auto():
    for path in _with_device():
        cmd = cli
        for name in path:
            cmd = cmd.commands[name]
        (opt,) = [p for p in cmd.params if "--device" in p.opts]
        assert opt.default in ("auto", None), path          # None: train keeps a resumed run's own
        assert "auto" in opt.help


def test_interpolate_and_traverse_take_points_and_still_the_old_steps(run_cli, tmp_path):
    from PIL import Image

    import ganvae
    from tests.conftest import DATA

    run, _ = ganvae.train("vae", DATA, tmp_path / "run", steps=1, batch_size=16, progress=False,
                          overrides={"width": 4, "latent": 4})
    code, out, err = run_cli("interpolate", run, "--pairs", 2, "--points", 5, "-o", tmp_path / "new.png")
    assert code == 0 and "paths of 5 steps" in out and not err
    code, _, err = run_cli("interpolate", run, "--pairs", 2, "--steps", 5, "-o", tmp_path / "old.png")
    assert code == 0 and "interpolate --steps is now --points" in err
    assert Image.open(tmp_path / "new.png").size == Image.open(tmp_path / "old.png").size
    code, _, err = run_cli("traverse", run, "--dims", 2, "--points", 3, "-o", tmp_path / "t.png")
    assert code == 0, err


def test_sample_to_a_folder_of_pngs_that_eval_reads_back(run_cli, tmp_path):
    import numpy as np
    from PIL import Image

    import ganvae
    from tests.conftest import DATA

    run, _ = ganvae.train("dcgan", DATA, tmp_path / "run", steps=1, batch_size=16, progress=False,
                          overrides={"width": 4, "latent": 4})
    out = tmp_path / "samples"
    code, _, err = run_cli("sample", run, "-n", 12, "-o", out, "--seed", 3)
    assert code == 0, err
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(12)]
    # the same images as the .npz of the same draw
    code, _, _ = run_cli("sample", run, "-n", 12, "-o", tmp_path / "s.npz", "--seed", 3)
    x = np.load(tmp_path / "s.npz")["x"]
    assert np.array_equal(np.asarray(Image.open(files[5])), x[5, 0])
    code, out_text, err = run_cli("eval", "--samples", out, "--data", DATA, "-n", 12)
    assert code == 0, err
    # nothing is overwritten: a non-empty directory is refused, and left as it was
    code, _, err = run_cli("sample", run, "-n", 3, "-o", out)
    assert code == 2 and "not empty" in err and len(list(out.iterdir())) == 12


def test_conditional_samples_go_to_one_sub_folder_per_class(run_cli, tmp_path):
    import ganvae
    from ganvae.data import load_dataset
    from tests.conftest import DATA

    run, _ = ganvae.train("cgan", DATA, tmp_path / "run", steps=1, batch_size=16, progress=False,
                          overrides={"width": 4, "latent": 4})
    code, _, err = run_cli("sample", run, "-n", 2, "--class", "all", "-o", tmp_path / "byclass")
    assert code == 0, err
    classes = load_dataset(DATA).classes
    assert sorted(p.name for p in (tmp_path / "byclass").iterdir()) == sorted(classes)
    back = load_dataset(f"folder:{tmp_path / 'byclass'}")
    assert back.classes == sorted(classes) and len(back.train) + len(back.test) == 2 * len(classes)


def test_checkpoint_picks_last_best_or_a_step(run_cli, tmp_path):
    import numpy as np

    import ganvae
    from tests.conftest import DATA

    run, _ = ganvae.train("dcgan", DATA, tmp_path / "run", steps=4, batch_size=16, progress=False,
                          checkpoint_every=2, overrides={"width": 4, "latent": 4})
    draws = {}
    for which in ("last", "4", "2"):
        code, _, err = run_cli("sample", run, "-n", 4, "-o", tmp_path / f"{which}.npz", "--checkpoint", which)
        assert code == 0, err
        draws[which] = np.load(tmp_path / f"{which}.npz")["x"]
    assert np.array_equal(draws["last"], draws["4"])        # the final model is step 4's
    assert not np.array_equal(draws["2"], draws["4"])       # step 2 is another model
    code, _, err = run_cli("sample", run, "-n", 4, "-o", tmp_path / "b.png", "--checkpoint", "best")
    assert code == 2 and "has no best checkpoint" in err
    code, _, err = run_cli("sample", run, "-n", 4, "-o", tmp_path / "c.png", "--checkpoint", "3")
    assert code == 2 and "no checkpoint of step 3 (kept: 2, 4)" in err
    code, _, err = run_cli("reconstruct", run, "-o", tmp_path / "r.png", "--checkpoint", "soon")
    assert code == 2 and "--checkpoint soon: give last, best or a step number" in err


@pytest.mark.parametrize("path", list(_commands(cli)), ids=lambda p: " ".join(p) or "ganvae")
def test_every_help_ends_with_examples_that_parse(run_cli, path):
    import shlex

    code, out, _ = run_cli(*path, "--help")
    assert "Examples:" in out, path
    block = out.split("Examples:", 1)[1].split("\n\n", 1)[0]            # up to the blank line before Options
    examples = [line.strip() for line in block.splitlines() if line.strip()]
    examples = [e for e in examples if e.startswith("ganvae ")]
    assert len(examples) >= 2, (path, examples)
    for e in examples:   # every example names real commands and options (up to a pipe or redirection)
        for op in (" | ", " > ", " && "):
            e = e.split(op)[0]
        args = shlex.split(e)[1:]
        cmd, i = cli, 0
        while i < len(args) and args[i] in getattr(cmd, "commands", {}):
            cmd = cmd.commands[args[i]]
            i += 1
        ctx = cmd.make_context("ganvae", args[i:], resilient_parsing=True)
        known = {o for p in cmd.params if not getattr(p, "hidden", False) for o in getattr(p, "opts", ())}
        for a in args[i:]:
            if a.startswith("-") and a not in ("-h", "--help"):
                assert a.split("=")[0] in known, (e, a)
        ctx.close()


def _command(path):
    cmd = cli
    for name in path:
        cmd = cmd.commands[name]
    return cmd


@pytest.mark.parametrize("path", list(_commands(cli)), ids=lambda p: " ".join(p) or "ganvae")
def test_every_option_follows_the_conventions(path):
    """One convention on every command (README, "Conventions"): every option has help, defaults
    shown one way (click's [default: X], never a hand-written [X]), -n/--n for counts,
    -o/--output for the file written, --out for a directory, --batch-size for images at once,
    --device on the one checked type."""
    import re

    from ganvae.cli import DeviceType

    for p in _command(path).params:
        if not isinstance(p, click.Option) or p.hidden or p.name == "help":
            continue
        assert p.help, (path, p.opts)
        assert not re.search(r"\[[^\]]*\]\.?$", p.help.strip()), (path, p.opts, p.help)   # a default by hand
        if p.name == "n":
            assert p.opts == ["-n", "--n"], (path, p.opts)
        if "-o" in p.opts:
            assert p.opts == ["-o", "--output"], (path, p.opts)
        if p.name in ("batch", "batch_size"):
            assert p.opts == ["--batch-size"], (path, p.opts)
        if p.name == "device":
            assert isinstance(p.type, DeviceType), path
        if "--out" in p.opts or "--steps" in p.opts:
            assert len(p.opts) == 1, (path, p.opts)
    opts = {o for p in _command(path).params if not getattr(p, "hidden", False) for o in getattr(p, "opts", ())}
    assert not opts & {"--batch", "--run-dir", "--dir", "--output-dir"}, (path, opts)
    text = _command(path).get_help(click.Context(_command(path), info_name="ganvae"))
    assert "[default: (" not in text and "default: (" not in text, path   # shown as [default: X], every one


@pytest.mark.parametrize("args, note", [
    (["train", "ae", "--data", "shapes:n=64,n_test=16", "--steps", 1, "--batch-size", 8, "--set", "width=4", "--quiet",
      "--run-dir", "{tmp}/r"], "train --run-dir is now --out"),
    (["sample", "{run}", "-n", 2, "--batch", 1, "-o", "{tmp}/s.npz"], "sample --batch is now --batch-size"),
    (["complete", "{run}", "-n", 2, "--steps", 1, "--method", "latent-opt", "-o", "{tmp}/c.npz", "--quiet"],
     "complete --steps is now --opt-steps"),
    (["translate", "{run}", "-n", 2, "--batch", 1, "-o", "{tmp}/t.npz"], "translate --batch is now --batch-size"),
    # README promises --batch everywhere --batch-size is (issue 34): train and compare too
    (["train", "ae", "--data", "shapes:n=64,n_test=16", "--steps", 1, "--batch", 8, "--set", "width=4", "--quiet",
      "--out", "{tmp}/r"], "train --batch is now --batch-size"),
    (["compare", "--data", "shapes:n=256,n_test=64", "--models", "ae", "--steps", 1, "--batch", 8, "--set", "width=4",
      "--set", "latent=4", "--eval-n", 100, "--curve-n", 100, "--curve-points", 1, "--quiet", "--out", "{tmp}/o"],
     "compare --batch is now --batch-size"),
])
def test_old_spellings_still_work_with_a_deprecation_note(args, note, run_cli, tmp_path):
    import ganvae
    from tests.conftest import DATA

    from PIL import Image

    run, data, overrides = tmp_path / "run", DATA, {"width": 4, "latent": 4}
    if args[0] == "translate":   # a pix2pix run on 8 aligned pairs of 16x16 images
        data, overrides = f"pairs:{tmp_path / 'pairs'}", {"width": 4}
        for side in "AB":
            (tmp_path / "pairs" / side).mkdir(parents=True)
            for i in range(8):
                Image.fromarray(np.full((16, 16), 20 * i + (side == "B") * 50, np.uint8)).save(
                    tmp_path / "pairs" / side / f"{i}.png")
    if "{run}" in args:
        ganvae.train("pix2pix" if args[0] == "translate" else "dcgan", data, run, steps=1, batch_size=4,
                     progress=False, overrides=overrides)
    code, _, err = run_cli(*[str(a).format(tmp=tmp_path, run=run) for a in args])
    assert code == 0, err
    assert f"ganvae: warning: ganvae {note}; " in err
    if args[0] == "train":
        assert (tmp_path / "r" / "summary.json").exists()
    if args[0] in ("train", "compare") and "--batch" in args:   # the old spelling set the batch size
        import json

        saved = (json.loads((tmp_path / "r" / "config.json").read_text())["train"] if args[0] == "train"
                 else json.loads((tmp_path / "o" / "compare.json").read_text()))
        assert saved["batch_size"] == 8
    if args[0] == "sample":
        assert np.load(tmp_path / "s.npz")["x"].shape[0] == 2


def test_eval_and_the_task_commands_take_checkpoint(run_cli, tmp_path):
    """eval --checkpoint STEP scores that step's model, into RUN/eval-stepN.json (the final
    model's eval.json is left alone); a task command (probe) takes it too."""
    import json

    import ganvae
    from tests.conftest import DATA

    run, _ = ganvae.train("vae", DATA, tmp_path / "run", steps=4, batch_size=16, progress=False,
                          checkpoint_every=2, overrides={"width": 4, "latent": 4})
    scores = {}
    for which, name in (("last", "eval.json"), ("2", "eval-step2.json"), ("4", "eval-step4.json")):
        code, _, err = run_cli("eval", run, "-n", 200, "--nll-k", 2, "--nll-images", 8, "--checkpoint", which,
                               "--quiet")
        assert code == 0, err
        scores[which] = json.loads((run / name).read_text())
        assert scores[which]["checkpoint"] == which
    assert scores["4"]["metrics"]["fd"] == scores["last"]["metrics"]["fd"]       # the final model is step 4's
    assert scores["2"]["metrics"]["fd"] != scores["4"]["metrics"]["fd"]
    code, _, err = run_cli("probe", run, "--per-class", "5", "--n-test", 50, "--checkpoint", 2)
    assert code == 0, err
    probe = json.loads((run / "eval-step2.json").read_text())
    assert "probe" in probe["tasks"] and probe["metrics"] == scores["2"]["metrics"]   # merged, not replaced
    code, _, err = run_cli("eval", run, "--checkpoint", "best")
    assert code == 2 and "has no best checkpoint" in err


@pytest.mark.parametrize("words, expected", [
    ("ganvae train wg", {"wgan", "wgan-gp"}),
    ("ganvae config beta", {"beta-vae"}),
    ("ganvae compare --models ae,va", {"ae,vae", "ae,vaegan", "ae,vaegan-paper"}),
    ("ganvae train vae --data fa", {"fashion-mnist", "factors"}),
    ("ganvae sam", {"sample"}),
])
def test_shell_completion_completes_commands_presets_and_datasets(words, expected):
    """The real console script under bash's completion protocol (what `eval "$(_GANVAE_COMPLETE=
    bash_source ganvae)"` installs): each reply line is TYPE,VALUE."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    ganvae = str(Path(sys.executable).parent / "ganvae")   # the console script pip installed
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1),
           "_GANVAE_COMPLETE": "bash_complete"}
    r = subprocess.run([ganvae], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = {line.split(",", 1)[1] for line in r.stdout.splitlines() if line}
    assert got == expected, got
    script = subprocess.run([ganvae], env={**os.environ, "_GANVAE_COMPLETE": "bash_source"},
                            capture_output=True, text=True, timeout=60).stdout
    assert "complete -o nosort -F _ganvae_completion ganvae" in script


def test_datasets_download_still_takes_its_old_dir_option(run_cli, tmp_path):
    """--dir is --out now: still parsed (with a note), so the command gets as far as the name."""
    code, _, err = run_cli("datasets", "download", "nosuch", "--dir", tmp_path / "d")
    assert code == 2 and "ganvae datasets download --dir is now --out" in err
    assert "unknown dataset 'nosuch'" in err and not (tmp_path / "d").exists()
