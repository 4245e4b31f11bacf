from rhythm_shared.kit.migrations import run_env

from rhythm_reporting.adapters.db import metadata

run_env(metadata)
