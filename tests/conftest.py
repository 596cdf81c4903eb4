"""Settings for the whole test suite.

Property tests (hypothesis) draw the same examples on every run, so a run's result does not depend
on luck and CI is repeatable; ``HYPOTHESIS_PROFILE=explore make test`` draws fresh examples (and
keeps hypothesis' example database) to search wider.
"""

import os

from hypothesis import settings

settings.register_profile("deterministic", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))
