"""The one reader of requirements files' lines: each line that is not blank or a comment, parsed
as a PEP 508 requirement or with why it is none. What to do with the others (pip options such as
`--find-links`, lines that are no requirement) is the caller's policy."""
from typing import Iterator, Tuple, Union

from packaging.requirements import InvalidRequirement, Requirement


def parsed_lines(text: str) -> Iterator[Tuple[int, str, Union[Requirement, InvalidRequirement]]]:
    """(line number from 1, the line without its ` # comment`, its requirement or the parse error)
    for each line of `text` that says something; an option (`-...`) is never a requirement."""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        try:
            req: Union[Requirement, InvalidRequirement] = Requirement(line)
        except InvalidRequirement as exc:
            req = exc
        yield number, line, req
