"""A non-editable install (a wheel) carries the templates and renders reports from them."""

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.site_fixtures import REPO

TEMPLATES = sorted(p.relative_to(REPO / "templates").as_posix()
                   for p in (REPO / "templates").rglob("*") if p.is_file())


def test_wheel_ships_every_template_and_renders_from_them(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(REPO)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("altgrad_docs-*.whl")
    prefix = "altgrad_docs/_templates/"
    shipped = sorted(n[len(prefix):] for n in zipfile.ZipFile(wheel).namelist() if n.startswith(prefix))
    assert shipped == TEMPLATES
    target = tmp_path / "site-packages"
    zipfile.ZipFile(wheel).extractall(target)  # what pip install puts in site-packages
    code = ("import sys; from altgrad_docs import ReportGenerator; "
            "from altgrad_docs.templates_dir import TEMPLATE_DIR; print(TEMPLATE_DIR); "
            "sys.stdout.write(ReportGenerator(output_dir=sys.argv[1]).render_formats())")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "reports")], cwd=tmp_path,
                         env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    folder, _, report = out.stdout.partition("\n")
    assert Path(folder) == target / "altgrad_docs" / "_templates"
    from altgrad_docs import ReportGenerator

    assert report == ReportGenerator(output_dir=tmp_path / "here").render_formats()  # the checkout's
    assert report.startswith("# FP8 formats")
