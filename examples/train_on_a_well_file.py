"""Train FNO and BOON on an HDF5 file in The Well's layout.

Writes a small file with ``physguard.datasets.well.export_well`` (any file in The Well's
layout works, for example one you made yourself), reads it lazily and trains both models.
The same from the shell: ``physguard run heat-neumann --data FILE.h5``.

    python examples/train_on_a_well_file.py [--tiny]
"""

import argparse
import tempfile
from pathlib import Path

from physguard.datasets.operator import make_operator_data
from physguard.datasets.well import export_well, read_well
from physguard.experiments.boon import BOONConfig, run_boon

parser = argparse.ArgumentParser()
parser.add_argument("--tiny", action="store_true", help="small sizes (CI)")
args = parser.parse_args()
n_samples, n_points, epochs = (12, 24, 1) if args.tiny else (250, 128, 50)

folder = Path(tempfile.mkdtemp())
path = folder / "heat.h5"
export_well(make_operator_data("heat-neumann", n_samples, n_points, "single"), path)

data = read_well(path, "heat-neumann", "single")  # fields stay on disk until a batch needs them
config = BOONConfig.default("heat-neumann", "single", epochs=epochs, n_points=n_points)
records = run_boon(config, folder / "run", progress=not args.tiny, data=data)
for r in records:
    print(f"{r['model']}: relative L2 {r['rel_l2']:.3e}, boundary error "
          f"{r['boundary_error']:.1e}")
print(f"run folder: {folder / 'run'}")
