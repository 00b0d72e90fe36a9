"""The README and docs/: every relative link leads to a file of this repository."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(page):
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+://|#|mailto:", target):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"{page.name} links outside the repository: {target}"
        assert path.exists(), f"{page.name} links to a missing {target}"


def test_the_readme_has_the_two_set_up_commands_and_nothing_outside_the_repository():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"```bash\n(.*?)\n```", setup, re.S) == [
        "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && slcbench speed",
        'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]" && '
        "python -m pytest -q --benchmark-disable",
    ]
    assert "../shared" not in text
