"""Scenario discovery by name, and the errors for names that are not scenarios."""

from __future__ import annotations

import pkgutil
from pathlib import Path

import pytest

import scenarios
from scenarios import registry
from scenarios.errors import ScenarioError, UnknownScenario

SHIPPED = ["bulk", "foo", "users"]


def test_available_lists_the_shipped_scenarios_sorted() -> None:
    assert registry.available() == SHIPPED


def test_infrastructure_modules_are_not_scenarios() -> None:
    modules = {module.name for module in pkgutil.iter_modules(scenarios.__path__)}

    assert modules >= registry.INFRASTRUCTURE, "INFRASTRUCTURE names a module that is gone"
    assert not registry.INFRASTRUCTURE & set(registry.available())


def test_a_new_module_is_a_scenario_and_a_private_one_is_not(extra_scenarios: Path) -> None:
    (extra_scenarios / "zz_new.py").write_text("def run(context): pass\n")
    (extra_scenarios / "_private.py").write_text("def run(context): pass\n")

    assert "zz_new" in registry.available()
    assert "_private" not in registry.available()
    assert registry.load("zz_new").__name__ == "scenarios.zz_new"


def test_a_package_with_run_is_a_scenario(extra_scenarios: Path) -> None:
    package = extra_scenarios / "zz_package"
    package.mkdir()
    (package / "__init__.py").write_text("def run(context): pass\n")

    assert callable(registry.load("zz_package").run)


def test_load_returns_the_module() -> None:
    module = registry.load("foo")

    assert module.__name__ == "scenarios.foo"
    assert callable(module.run)


@pytest.mark.parametrize("name", ["nope", "_private", "cli", "factories", "../foo", "foo.py", ""])
def test_load_refuses_what_is_not_a_scenario(name: str) -> None:
    with pytest.raises(UnknownScenario) as caught:
        registry.load(name)

    message = str(caught.value)
    assert repr(name) in message
    assert "known scenarios are bulk, foo, users" in message
    assert "\n" not in message
    assert isinstance(caught.value, ScenarioError)
    assert isinstance(caught.value, LookupError)


def test_a_module_without_run_is_an_error(extra_scenarios: Path) -> None:
    (extra_scenarios / "zz_broken.py").write_text("RUN = 1\n")

    with pytest.raises(ScenarioError, match=r"scenarios\.zz_broken .* has no run\(context\)"):
        registry.load("zz_broken")


def test_unknown_message_when_there_are_no_scenarios(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "available", list)

    with pytest.raises(UnknownScenario, match="known scenarios are none"):
        registry.load("foo")
