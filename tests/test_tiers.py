"""The two test tiers (tests/conftest.py): every test is in one, and the unit tier starts no Airflow."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

INNER_TESTS = '''
import subprocess
import pytest

def test_unit_starting_airflow(fake_airflow):
    subprocess.run([fake_airflow, "version"], check=True)

@pytest.mark.integration
def test_integration_starting_airflow(fake_airflow):
    subprocess.run([fake_airflow, "version"], check=True)

@pytest.mark.e2e
def test_e2e_is_integration():
    pass

def test_plain_is_unit():
    pass
'''


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    """A test folder with this suite's conftest and a stand-in ``airflow`` command (exits 0)."""
    conftest = (Path(__file__).with_name("conftest.py")).read_text()
    airflow = pytester.path / "bin" / "airflow"
    airflow.parent.mkdir()
    airflow.write_text("#!/bin/sh\nexit 0\n")
    airflow.chmod(0o755)
    fixture = f"\n\n@pytest.fixture\ndef fake_airflow():\n    return {str(airflow)!r}\n"
    pytester.makeconftest(conftest + fixture)
    pytester.makepyfile(test_inner=INNER_TESTS)
    pytester.makeini("[pytest]\nmarkers =\n    unit: u\n    integration: i\n    e2e: e\n")
    return pytester


def test_a_unit_test_that_starts_airflow_fails_naming_the_fix(inner: pytest.Pytester) -> None:
    result = inner.runpytest_subprocess("-q")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*Failed: a unit-tier test started*airflow*mark it `integration`*"])
    result.stdout.fnmatch_lines(["FAILED test_inner.py::test_unit_starting_airflow*"])


def test_every_test_is_in_exactly_one_tier(inner: pytest.Pytester) -> None:
    unit = inner.runpytest_subprocess("-q", "-m", "unit", "--collect-only")
    integration = inner.runpytest_subprocess("-q", "-m", "integration", "--collect-only")
    both = inner.runpytest_subprocess("-q", "-m", "unit and integration", "--collect-only")
    unit.stdout.fnmatch_lines(["*2/4 tests collected*"])
    integration.stdout.fnmatch_lines(["*2/4 tests collected*"])
    assert "test_e2e_is_integration" in integration.stdout.str()
    assert "test_plain_is_unit" in unit.stdout.str()
    both.stdout.fnmatch_lines(["no tests collected (4 deselected)*"])
