"""Test configuration: property-based tests are derandomized, so CI runs are reproducible.

``PHYSGUARD_HYPOTHESIS=explore python -m pytest`` draws fresh random examples instead (a
longer search for counterexamples; each one found becomes a regression test).
"""

import os

from hypothesis import settings

settings.register_profile("physguard", derandomize=True, deadline=None)
settings.register_profile("explore", derandomize=False, deadline=None)
settings.load_profile("explore" if os.environ.get("PHYSGUARD_HYPOTHESIS") == "explore"
                      else "physguard")
