from rhythm_shared.kit.migrations import run_env
from tests.kit.sample import metadata

run_env(metadata)
