"""Files shipped inside the package (base layer: reads files, runs nothing): the load generator
agent that runs are uploading to hosts, and the Jinja2 templates.

The templates' source is the repository's top-level ``templates/``; a wheel carries a copy as
``labctl/templates/`` (pyproject.toml maps it), a source checkout reads the original.
"""

from __future__ import annotations

import functools
import importlib.resources as resources
from contextlib import AbstractContextManager
from pathlib import Path

import jinja2

from labctl.errors import LabError

AGENT_NAME = "loadgen.py"


def agent_file(name: str = AGENT_NAME) -> AbstractContextManager[Path]:
    """An agent's source (the load generator, the sampler) as a local file, for uploading
    (``with agent_file() as p``)."""
    return resources.as_file(resources.files("labctl.agent").joinpath(name))


def templates_dir() -> Path:
    """The directory of the Jinja2 templates: inside an installed wheel, else the checkout's."""
    package_dir = Path(str(resources.files("labctl")))
    for directory in (package_dir / "templates", package_dir.parent / "templates"):
        if directory.is_dir():
            return directory
    raise LabError(f"labctl's templates are missing: neither {package_dir / 'templates'} nor "
                   f"{package_dir.parent / 'templates'} exists (a broken installation: "
                   "reinstall labctl)")


@functools.lru_cache(maxsize=1)
def template_environment() -> jinja2.Environment:
    """One Jinja2 environment over the templates: every value escaped, a missing one an error."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
