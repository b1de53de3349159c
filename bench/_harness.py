"""Moved to ``pygzlaw.bench._harness`` (so ``pygzlaw bench`` runs from an installed
package); this name stays for the scripts here that import ``_harness``."""
from pygzlaw.bench._harness import (git_commit, machine_info, median, quantiles,  # noqa: F401
                                    time_interleaved, time_runs, write_json)
