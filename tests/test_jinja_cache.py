"""Compiled templates kept on disk: a new process compiles nothing, an edit or other
environment settings compile anew, a damaged file is compiled over."""

import jinja2
import pytest

from altgrad_docs import jinja_cache


@pytest.fixture
def compiles(monkeypatch):
    """Count Jinja compilations; start each test as a fresh process would (no cache in memory)."""
    monkeypatch.setattr(jinja_cache, "_KEPT", {})
    seen = []
    real = jinja2.Environment.compile

    def counting(self, source, *args, **kwargs):
        seen.append(source)
        return real(self, source, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    return seen


def _env(templates, folder, **settings):
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates)), **settings)
    env.filters["shout"] = lambda v: f"{v}!"
    return jinja_cache.keep_compiled(env, folder)


def _new_process(monkeypatch):
    monkeypatch.setattr(jinja_cache, "_KEPT", {})


def test_a_new_process_loads_the_compiled_template(tmp_path, compiles, monkeypatch):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.md").write_text("{{ x | shout }}")
    cache = tmp_path / "jinja"
    assert _env(tmp_path / "t", cache).get_template("a.md").render(x="hi") == "hi!"
    assert len(compiles) == 1 and len(list(cache.glob("*/*.bc"))) == 1
    _new_process(monkeypatch)
    assert _env(tmp_path / "t", cache).get_template("a.md").render(x="ho") == "ho!"
    assert len(compiles) == 1  # from the file
    _new_process(monkeypatch)
    (tmp_path / "t" / "a.md").write_text("{{ x }}?")  # edited: its checksum no longer matches
    assert _env(tmp_path / "t", cache).get_template("a.md").render(x="hi") == "hi?"
    assert len(compiles) == 2


def test_other_settings_do_not_share_compiled_code(tmp_path, compiles, monkeypatch):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.md").write_text("{% if x %}\n  yes\n{% endif %}\n")
    cache = tmp_path / "jinja"
    plain = _env(tmp_path / "t", cache).get_template("a.md").render(x=1)
    _new_process(monkeypatch)
    trimmed = _env(tmp_path / "t", cache, trim_blocks=True, lstrip_blocks=True).get_template("a.md").render(x=1)
    assert (plain, trimmed) == ("\n  yes\n", "  yes\n") and len(compiles) == 2
    assert len({p.parent for p in cache.glob("*/*.bc")}) == 2


def test_a_damaged_or_unwritable_cache_only_costs_a_compile(tmp_path, compiles, monkeypatch):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.md").write_text("{{ x | shout }}")
    cache = tmp_path / "jinja"
    _env(tmp_path / "t", cache).get_template("a.md")
    for path in cache.glob("*/*.bc"):
        path.write_bytes(b"j2" + b"\x00" * 40)
    _new_process(monkeypatch)
    assert _env(tmp_path / "t", cache).get_template("a.md").render(x="a") == "a!" and len(compiles) == 2
    _new_process(monkeypatch)
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert _env(tmp_path / "t", blocked).get_template("a.md").render(x="b") == "b!"
