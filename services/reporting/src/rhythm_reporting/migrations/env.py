from rhythm_reporting.adapters.db import metadata
from rhythm_shared.kit.migrations import run_env

run_env(metadata)
