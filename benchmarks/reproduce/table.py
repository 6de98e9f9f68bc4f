"""Write the "Reproductions" section at the top of BENCHMARKS.md from the claims' JSON files.

One row per claim (the 13 of issue 31, in order): the paper, our setup, the budget, the
numbers, and **shown** / **not shown** (or *not run yet*); below the table, each claim's full
verdict and, where it is not shown, the investigation. The section sits between two marker
comments and is replaced whole on every run; the rest of the file is left as it is.

    python benchmarks/reproduce/table.py [--results benchmarks/results/reproduce] [--file BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import REPO, RESULTS

START, END = "<!-- reproductions:start -->", "<!-- reproductions:end -->"

# the claims of issue 31, in its order: (title, paper, script); a claim with no JSON yet keeps
# its row, marked not run
CLAIMS = {
    1: ("DiffAugment stops D overfitting with little data", "Zhao et al. 2020", "claim01_diffaugment.py"),
    2: ("ADA does the same, adapting p", "Karras et al. 2020", "claim02_ada.py"),
    3: ("Transfer with Freeze-D helps a small target", "Mo et al. 2020", "claim03_transfer.py"),
    4: ("Norm regularization stabilises GAN training", "Miyato et al. 2018; Mescheder et al. 2018",
        "claim04_norm_reg.py"),
    5: ("The gradient penalty beats weight clipping", "Gulrajani et al. 2017", "claim05_wgan_gp.py"),
    6: ("The adversary makes pix2pix sharper than L1 alone", "Isola et al. 2017", "claim06_pix2pix.py"),
    7: ("CycleGAN learns the mapping without pairs", "Zhu et al. 2017", "claim07_cyclegan.py"),
    8: ("UNIT does too, through one shared latent space", "Liu et al. 2017", "claim08_unit.py"),
    9: ("VAE-GAN samples are sharper than the VAE's", "Larsen et al. 2016", "claim09_vaegan_sharp.py"),
    10: ("The AAE matches its aggregate posterior to the prior", "Makhzani et al. 2016",
         "claim10_aae_posterior.py"),
    11: ("BiGAN's encoder learns features", "Donahue et al. 2017", "claim11_bigan_probe.py"),
    12: ("Synthetic data alone teaches less than real", "Ravuri & Vinyals 2019", "claim12_cas.py"),
    13: ("β trades reconstruction for disentanglement", "Higgins et al. 2017", "claim13_beta_factors.py"),
}


# what we checked where a claim is not shown, by hand: {"6": "text"}; it wins over a script's own
INVESTIGATIONS = Path(__file__).with_name("investigations.json")


def load(results: Path, investigations: Path = INVESTIGATIONS) -> dict[int, dict]:
    notes = json.loads(investigations.read_text()) if investigations.exists() else {}
    found = {}
    for path in sorted(results.glob("[0-9][0-9]_*.json")):
        d = json.loads(path.read_text())
        if not d.get("quick"):
            found[int(d["claim"])] = {**d, "investigation": notes.get(str(d["claim"]), d.get("investigation"))}
    return found


def _budget(b) -> str:
    if isinstance(b, dict):
        return "; ".join(f"N={k}: {v}" for k, v in b.items())
    return str(b)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def section(found: dict[int, dict]) -> str:
    shown = sum(1 for d in found.values() if d.get("shown"))
    lines = [START, "## Reproductions (issue 31)", "",
             "Each model and remedy of this project's field, tested on this machine for the effect its paper "
             "reports, by one resumable script per claim in `benchmarks/reproduce/` (its JSON in "
             "`benchmarks/results/reproduce/`). The criteria are ours and the budgets far smaller than the "
             "papers'; a claim not shown carries what we checked and the budget that would settle it. "
             "This table is written by `python benchmarks/reproduce/table.py`.", "",
             f"**{shown} of {len(CLAIMS)} shown**; {sum(d.get('shown') is None for d in found.values())} in progress, "
             f"{len(CLAIMS) - len(found)} not run yet.", "",
             "| # | claim | paper | setup | budget | result | |", "|---|---|---|---|---|---|---|"]
    for n, (title, paper, script) in CLAIMS.items():
        d = found.get(n)
        if d is None:
            lines.append(f"| {n} | {_cell(title)} | {paper} | `{script}` | | | *not run yet* |")
            continue
        mark = {True: "**shown**", False: "**not shown**", None: "*in progress*"}[d.get("shown")]
        lines.append(f"| {n} | {_cell(d['title'])} | {_cell(d['paper'])} | {_cell(d['setup'])} | "
                     f"{_cell(_budget(d['budget']))} | {_cell(d['verdict'])} | {mark} |")
    lines += ["", "Criteria, commands and the investigations of the claims not shown:", ""]
    for n, d in sorted(found.items()):
        lines.append(f"- **{n}. {d['title']}** — shown when {d['criterion']}. `{d['command']}` "
                     f"({d['machine']}, torch {d['torch']}, {d['threads']} thread(s), finished {d['finished']}).")
        if d.get("shown") is not True and d.get("investigation"):
            lines.append(f"  *Investigation:* {d['investigation']}")
    lines += ["", END]
    return "\n".join(lines) + "\n"


def write(section_text: str, file: Path) -> None:
    text = file.read_text()
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + section_text + "\n" + tail
    else:   # first time: after the title and the machine paragraph, before the first section
        i = text.index("\n## ")
        text = text[:i + 1] + section_text + "\n" + text[i + 1:]
    tmp = file.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(file)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--file", type=Path, default=REPO / "BENCHMARKS.md")
    p.add_argument("--investigations", type=Path, default=INVESTIGATIONS,
                   help="the investigations of claims not shown, by claim number (JSON)")
    a = p.parse_args(argv)
    write(section(load(a.results, a.investigations)), a.file)
    print(f"wrote the Reproductions section of {a.file}")


if __name__ == "__main__":
    main()
