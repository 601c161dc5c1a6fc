"""Where the lid-driven cavity's time stepping blows up: the limits behind its default step.

physguard.LidDrivenCavity marches the vorticity with Crank-Nicolson diffusion (unconditionally
stable), AB2 advection and Thom's wall vorticity, extrapolated to the new level in
``simulate`` (second order) or lagged in ``steady_state``. The explicit parts limit the step.
This script marches each configuration with a fixed diffusion number ``D = nu dt / h^2`` or
CFL number ``C = U dt / h`` (lid speed U = 1) and prints whether it stayed finite
(``.``) or blew up (``X``). Recorded in benchmarks/results/cavity_stability.md.

    python benchmarks/cavity_stability.py
"""

import numpy as np

from physguard.pdes.cavity import LidDrivenCavity, random_stream_function


def outcome(cavity: LidDrivenCavity, n: int, dt: float, scheme: str) -> str:
    limits = LidDrivenCavity.LIMITS
    LidDrivenCavity.LIMITS = {k: {"diffusion": 1e9, "cfl": 1e9} for k in limits}
    try:  # the limits are what is measured here: lift them for the march
        if scheme == "lagged":
            cavity.steady_state(n, dt=dt, max_time=30.0)
        else:
            psi0 = random_stream_function(n, 4, 0.5, np.random.default_rng(0))
            cavity.simulate(n, [6.0], psi0=psi0, dt=dt)
        return "."
    except ValueError as err:
        return "X" if "blew up" in str(err) else "n"  # n: no steady state by t = 30
    finally:
        LidDrivenCavity.LIMITS = limits


def main() -> None:
    print("Diffusion number D = nu dt / h^2 (CFL below 1)\n")
    for scheme, values in (("extrapolated", (0.4, 0.45, 0.5, 0.52, 0.55, 0.6)),
                           ("lagged", (0.5, 1.0, 1.6))):
        print(f"{scheme} wall vorticity\n\n| Re | nodes | " + " | ".join(
            f"D={d}" for d in values) + " |\n|---|---|" + "---|" * len(values))
        for re, n in ((10, 33), (50, 65), (100, 129)):
            cavity, h = LidDrivenCavity(re), 1 / (n - 1)
            cells = [outcome(cavity, n, d * h * h / cavity.nu, scheme) for d in values]
            print(f"| {re} | {n} | " + " | ".join(cells) + " |")
        print()
    cfls = (0.5, 1.0, 1.25, 1.5)
    print("CFL number C = U dt / h (D below 0.5), extrapolated wall vorticity\n\n"
          "| Re | nodes | " + " | ".join(f"C={c}" for c in cfls) + " |\n|---|---|"
          + "---|" * len(cfls))
    for re, n in ((400, 65), (400, 129), (1000, 65), (5000, 65)):
        cavity, h = LidDrivenCavity(re), 1 / (n - 1)
        print(f"| {re} | {n} | " + " | ".join(outcome(cavity, n, c * h, "extrapolated")
                                               for c in cfls) + " |")


if __name__ == "__main__":
    main()
