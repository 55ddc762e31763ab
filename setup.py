"""Build step (packaging, not part of labctl): the wheel carries the top-level ``templates/``
as ``labctl/templates/``, where labctl.packaged looks first. ``templates/`` stays the source;
an editable install and a source checkout read it directly.

Everything else is declared in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TEMPLATES = Path(__file__).resolve().parent / "templates"


class BuildPyWithTemplates(build_py):
    """build_py, then a copy of templates/*.j2 into the built package."""

    def run(self) -> None:
        super().run()
        templates = sorted(TEMPLATES.glob("*.j2"))
        if not templates:
            raise RuntimeError(f"no templates in {TEMPLATES}: the wheel would be broken")
        target = Path(self.build_lib) / "labctl" / "templates"
        target.mkdir(parents=True, exist_ok=True)
        for template in templates:
            shutil.copyfile(template, target / template.name)


setup(cmdclass={"build_py": BuildPyWithTemplates})
