"""Claim 8: UNIT learns the mapping without pairs, through one shared latent space (Liu et al.
2017): claim07_cyclegan.py with --model unit (the same data, budget and criterion).

    python benchmarks/reproduce/claim08_unit.py [--out runs/reproduce] [--quick]
"""

from __future__ import annotations

import sys

import claim07_cyclegan

if __name__ == "__main__":
    claim07_cyclegan.main([*sys.argv[1:], "--model", "unit"])
