"""The experiment spec: what to run, where, how often. Loaded from YAML, validated into types.

experiment.py is the spec itself; settings.py the settings of where sandboxes run (resources,
the kubernetes backend's, SSH targets); load.py reads a spec from profiles, files and flags.
"""

from __future__ import annotations

from sandbench.spec.concurrency import (ARRIVAL_SYNTAX, MAX_CONCURRENCY, Arrival, offsets_s,
                                        parse_arrival, parse_levels)
from sandbench.spec.experiment import (BACKEND_PARAMS, DEFAULT_RUNTIMES, MAX_ROUNDS,
                                       MAX_TIMEOUT_S, OPTIONAL_DEFAULTS, VARIANT_NAME, Spec,
                                       Variant, WorkloadRun)
from sandbench.spec.load import (PROFILES, Overrides, SpecError, load_spec, parse_spec,
                                 read_spec, validation_message)
from sandbench.spec.settings import (KubernetesSettings, KubevirtSettings, Resources, SshTarget,
                                     Strict)

__all__ = ["ARRIVAL_SYNTAX", "MAX_CONCURRENCY", "Arrival", "offsets_s", "parse_arrival",
           "parse_levels", "BACKEND_PARAMS", "DEFAULT_RUNTIMES", "MAX_ROUNDS", "MAX_TIMEOUT_S",
           "OPTIONAL_DEFAULTS", "PROFILES", "VARIANT_NAME", "KubernetesSettings",
           "KubevirtSettings", "Overrides", "Resources", "Spec", "SpecError", "SshTarget",
           "Strict", "Variant", "WorkloadRun", "load_spec", "parse_spec", "read_spec",
           "validation_message"]
