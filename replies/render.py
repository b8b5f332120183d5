"""Rendering of the reply templates in a sandboxed Jinja2 environment.

Each template is a file `templates/<audience>_<purpose>.txt.j2` whose first line is
`Subject: ...`, followed by a blank line and the body. Message content is only ever
passed in as data, never used as a template, and StrictUndefined turns a missing
value into an error instead of a blank in a letter to a professional.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    body: str


class TemplateError(Exception):
    """Raised when a template is missing, malformed or needs a value it was not given."""


class Renderer:
    def __init__(self, folder: Path = TEMPLATES) -> None:
        self.environment = SandboxedEnvironment(
            loader=FileSystemLoader(str(folder)),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def template_names(self) -> list[str]:
        return sorted(name.removesuffix(".txt.j2") for name in self.environment.list_templates()
                      if name.endswith(".txt.j2"))

    def render(self, name: str, context: dict) -> RenderedMail:
        """Render template `name` (without the .txt.j2 suffix) into a subject and body."""
        try:
            text = self.environment.get_template(f"{name}.txt.j2").render(**context)
        except Exception as error:  # jinja2 raises several unrelated classes
            raise TemplateError(f"template {name!r} failed: {type(error).__name__}: {error}") from error

        first_line, _, rest = text.partition("\n")
        if not first_line.startswith("Subject: "):
            raise TemplateError(f"template {name!r} must start with a 'Subject: ' line")
        subject = " ".join(first_line.removeprefix("Subject: ").split())
        return RenderedMail(subject=subject, body=rest.lstrip("\n"))
