"""Exact walls, exact conservation and an uncertainty, for your own trained operators.

Given a few operators trained from different seeds (here: tiny FNOs trained in a minute), an
``OperatorEnsemble`` turns their predictions into a Gaussian; one ProbConserv update with the
wall rows (the Neumann stencils BOON enforces) stacked with the mass row makes the mean meet
both, exactly. ``physguard run heat-neumann --uq`` does all of this with a report.

    python examples/both_guarantees.py [--tiny]
"""

import argparse
import dataclasses

import physguard as pg
from physguard.experiments.boon import BOONConfig, split_data, train_operator
from physguard.experiments.uq import true_mass
from physguard.models import OperatorEnsemble

parser = argparse.ArgumentParser()
parser.add_argument("--tiny", action="store_true", help="small sizes (CI)")
args = parser.parse_args()
sizes = dict(n_train=16, n_test=6, epochs=1, n_points=24, width=8, modes=6) if args.tiny \
    else dict(n_train=200, n_test=50, epochs=50)
config = BOONConfig.default("heat-neumann", "single", **sizes)
train, test = split_data(config)
calibration, test = test.subset(slice(0, len(test) // 2)), test.subset(slice(len(test) // 2,
                                                                             None))

members = [train_operator("FNO", train, dataclasses.replace(config, seed=k), progress=False)[0]
           for k in range(3)]
ensemble = OperatorEnsemble(members)
ensemble.calibrate(calibration.inputs.float(), calibration.targets)  # fits the noise level

walls = pg.boundary_constraint(test.x, left=pg.Neumann(test.left_values),
                               right=pg.Neumann(test.right_values))
mass = pg.mass_constraint(test.x, true_mass(test))  # U(t) from the wall fluxes
prediction = ensemble.predict(test.inputs.float())  # Gaussian, batch (n, T) over N
posterior = pg.probconserv(prediction, pg.stack_constraints(walls, mass))

for name, g in (("ensemble", prediction), ("ProbConserv", posterior)):
    print(f"{name:12s} wall residual {float(walls.residual(g.mean).abs().max()):.1e}, "
          f"mass residual {float(mass.residual(g.mean).abs().max()):.1e}")
assert walls.residual(posterior.mean).abs().max() < 1e-8
assert mass.residual(posterior.mean).abs().max() < 1e-10
