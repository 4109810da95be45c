"""The contract suite's opt-out mechanism: `xfail = {test: reason}` becomes a strict xfail."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_xfail_table_is_strict(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        import pytest
        from strataml.testing import ContractBase

        class Mixin(ContractBase):
            def test_fails(self):
                assert False

            def test_passes(self):
                assert True

            def test_ok(self):
                assert True

        class TestOptOut(Mixin):
            xfail = {"test_fails": "known gap", "test_passes": "claimed gap that is not one"}
        """
    )
    result = pytester.runpytest("-rxX")
    # the known gap is an expected failure; a gap that passes fails the run (strict)
    result.assert_outcomes(passed=1, xfailed=1, failed=1)
    result.stdout.fnmatch_lines(["*XPASS(strict)*claimed gap*"])
    result.stdout.fnmatch_lines(["*XFAIL*test_fails*known gap*"])


def test_xfail_entry_naming_no_test_is_a_usage_error(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        from strataml.testing import ContractBase

        class TestTypo(ContractBase):
            xfail = {"test_ttl_expiry": "a test renamed since", "test_ok": "real gap"}

            def test_ok(self):
                assert False
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*TestTypo.xfail names tests it does not have*test_ttl_expiry*"])


def test_capability_gated_skip_names_the_capability(pytester: pytest.Pytester):
    pytester.makepyfile(
        """
        import pytest
        from strataml.capabilities import Capabilities
        from strataml.testing import ContractBase

        class Store:
            capabilities = Capabilities(ttl=False)

        class TestGate(ContractBase):
            def test_needs_ttl(self):
                self.require(Store(), "ttl")
        """
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*does not declare capability ttl*"])
