"""Escaping of user text for each context it lands in, and the template helpers."""

import markdown

from altgrad_docs.site.render import ext_url, fence, fmt_num, md_text, plain_title, url_segment


def _html(md: str) -> str:
    return markdown.markdown(md, extensions=["tables"])


def test_md_text_makes_html_inert():
    assert md_text("<img src=x onerror=alert(1)>") == (
        "&#60;img src&#61;x onerror&#61;alert&#40;1&#41;&#62;")
    assert "<img" not in _html(f"# Run {md_text('<img src=x onerror=alert(1)>')}")


def test_md_text_keeps_a_table_cell_one_cell():
    cell = md_text("a | b\nc")
    html = _html(f"| h | k |\n|---|---|\n| {cell} | 2 |\n")
    assert html.count("<td>") == 2 and "a &#124; b c" in html


def test_md_text_keeps_one_space_at_either_end():
    # a separator written in a template ({{ "; " if not loop.last }}) keeps its space
    assert md_text("; ") == "&#59; " and md_text(" ") == " " and md_text("") == ""
    assert md_text("  a \n b  ") == " a b " and md_text("a") == "a"


def test_md_text_defuses_markdown_links_and_emphasis():
    html = _html(md_text("[x](javascript:alert(1)) *y* `z`"))
    assert "<a" not in html and "<em>" not in html and "<code>" not in html


def test_ext_url_accepts_http_only():
    assert ext_url("https://wandb.ai/e/p/runs/abc") == "https://wandb.ai/e/p/runs/abc"
    assert ext_url("javascript:alert(1)") == ""
    assert ext_url("https://x.org/a b(c)") == "https://x.org/a%20b%28c%29"


def test_url_segment_and_title():
    assert url_segment("a b/c") == "a%20b%2Fc"
    assert plain_title("Run <b>") == '"Run _b_"'


def test_fmt_num_spells_non_finite():
    assert [fmt_num(v) for v in (float("nan"), float("inf"), 3.0, 0.123456, None)] == [
        "NaN", "inf", "3", "0.1235", ""]


def test_fence_outlasts_backticks_inside():
    assert fence("a ``` b") == "````text\na ``` b\n````"


def test_slow_progress_logs_only_when_the_loop_is_slow(caplog):
    from altgrad_docs.site import SlowProgress

    now = [0.0]
    quick = SlowProgress("run pages", 3, every=15.0, clock=lambda: now[0])
    slow = SlowProgress("run pages", 3, every=15.0, clock=lambda: now[0])
    with caplog.at_level("INFO", logger="mkdocs.plugins.altgrad"):
        for _ in range(3):
            quick.step()
        for _ in range(3):
            now[0] += 10.0
            slow.step()
    assert [r.getMessage() for r in caplog.records] == [
        "altgrad: run pages 2/3 after 20 s"]
