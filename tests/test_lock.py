"""The lock files cover pyproject.toml: a dependency added without `bash scripts/lock.sh` fails here."""

import re
import tomllib

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.site_fixtures import REPO

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)(?:\s*;\s*([^\\]+?))?\s*\\$")
#: Which of pyproject's requirement groups each lock must satisfy ("" = the base dependencies).
LOCKS = {"test.lock.txt": ("", "test", "zensical", "bench"), "site.lock.txt": ("", "zensical")}
UNLOCKED = {"torch"}  # installed by scripts/setup.sh as the CPU wheel (see scripts/lock.sh)


def pins(lock: str) -> dict[str, str]:
    """name -> version of every pin whose marker holds here; each pin must carry hashes."""
    lines = (REPO / "requirements" / lock).read_text().splitlines()
    found = {}
    for i, line in enumerate(lines):
        match = PIN.match(line)
        if not match:
            continue
        assert lines[i + 1].strip().startswith("--hash=sha256:"), f"{lock}: {line} has no hash"
        name, version, marker = match.groups()
        if marker is None or Marker(marker).evaluate():
            found[canonicalize_name(name)] = version
    return found


def requirements(groups: tuple[str, ...]) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    listed = [r for g in groups for r in (project["dependencies"] if g == "" else project["optional-dependencies"][g])]
    return [Requirement(r) for r in listed]


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_lock_pins_every_requirement_within_its_range(lock):
    pinned = pins(lock)
    for req in requirements(LOCKS[lock]):
        name = canonicalize_name(req.name)
        if name in UNLOCKED or (req.marker and not req.marker.evaluate()):
            continue
        assert name in pinned, f"{req} is not in requirements/{lock}: run bash scripts/lock.sh"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"requirements/{lock} pins {name}=={pinned[name]}, outside {req}: run bash scripts/lock.sh")
    assert "setuptools" in pinned  # builds the package itself (--no-build-isolation)


def test_both_locks_agree_and_torch_is_left_out():
    test, site = pins("test.lock.txt"), pins("site.lock.txt")
    assert {name: test.get(name) for name in site} == site
    assert not UNLOCKED & (set(test) | set(site))
