"""Re-evaluate a finished ``physguard run PROBLEM --uq`` folder with the current code, without
retraining: the saved members are loaded, and the calibration fits, the conditioning, the
metrics, the table and the figures are redone into a new run folder.

    python benchmarks/uq_reevaluate.py runs/heat-uq runs/heat-uq-now

Used when the Gaussian or its fit changes but the members do not (training is deterministic
for a given configuration, so a fresh run would train the same members).
"""

from __future__ import annotations

import sys
from pathlib import Path

from physguard.experiments.uq import load_uq_config, run_uq


def main() -> None:
    source, out = Path(sys.argv[1]), Path(sys.argv[2])
    run_uq(load_uq_config(source), out, progress=True, members_from=source)
    print((out / "table.md").read_text())


if __name__ == "__main__":
    main()
