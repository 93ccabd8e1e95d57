"""The nested-VM tier: registers the e2e marker and reports the boots' times."""


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: boots a nested VM (tests/e2e)")


def pytest_terminal_summary(terminalreporter, config):
    # set by test_vm.py's lanes fixture (its own output is captured)
    for line in getattr(config, "tapeshared_vm_boots", []):
        terminalreporter.write_line(line)
