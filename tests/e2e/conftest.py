"""The nested-VM tier: registers the e2e marker."""


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: boots a nested VM (tests/e2e)")
