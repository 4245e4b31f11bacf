pytest_plugins = ["rhythm_shared.testing.plugin"]
