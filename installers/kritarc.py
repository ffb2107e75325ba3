"""Read and edit one key of an INI file (Qt's QSettings format, as in ``kritarc``) while keeping every other byte.

Krita rewrites kritarc itself, so the installer touches one line and nothing else: a whole-file rewrite through
configparser would reorder keys, drop comments and change quoting that Krita relies on.
"""

from __future__ import annotations


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _section_bounds(lines: list[str], section: str) -> tuple[int, int] | None:
    """(index of the ``[section]`` line, index just past its last line), or None when absent."""
    start = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            if start is not None:
                return start, i
            if stripped[1:-1] == section:
                start = i
    return None if start is None else (start, len(lines))


def _key_of(line: str) -> str | None:
    stripped = line.strip()
    if not stripped or stripped[0] in ";#[" or "=" not in stripped:
        return None
    return stripped.split("=", 1)[0].strip()


def get_value(text: str, section: str, key: str) -> str | None:
    lines = text.splitlines()
    bounds = _section_bounds(lines, section)
    if bounds is None:
        return None
    for line in lines[bounds[0] + 1 : bounds[1]]:
        if _key_of(line) == key:
            return line.split("=", 1)[1].strip()
    return None


def set_value(text: str, section: str, key: str, value: str) -> str:
    """``text`` with ``key=value`` in ``[section]`` (added right after the header, or in a new section)."""
    nl = _newline(text)
    lines = text.splitlines(keepends=True)
    plain = [line.rstrip("\r\n") for line in lines]
    bounds = _section_bounds(plain, section)
    new_line = f"{key}={value}{nl}"
    if bounds is None:
        prefix = text
        if prefix and not prefix.endswith(("\n", "\r")):
            prefix += nl
        if prefix.strip():
            prefix += nl
        return f"{prefix}[{section}]{nl}{new_line}"
    start, end = bounds
    for i in range(start + 1, end):
        if _key_of(plain[i]) == key:
            ending = lines[i][len(plain[i]) :] or nl
            lines[i] = f"{key}={value}{ending}"
            return "".join(lines)
    if not lines[start].endswith(("\n", "\r")):
        lines[start] += nl
    lines.insert(start + 1, new_line)
    return "".join(lines)


def remove_key(text: str, section: str, key: str, drop_empty_section: bool = False) -> str:
    """``text`` without ``key`` in ``[section]``; the section too when it is left empty and ``drop_empty_section``."""
    lines = text.splitlines(keepends=True)
    plain = [line.rstrip("\r\n") for line in lines]
    bounds = _section_bounds(plain, section)
    if bounds is None:
        return text
    start, end = bounds
    keep = [i for i in range(start + 1, end) if _key_of(plain[i]) != key]
    removed = (end - start - 1) - len(keep)
    if not removed:
        return text
    body = [lines[i] for i in keep]
    if drop_empty_section and not any(line.strip() for line in body):
        head = lines[:start]
        # the blank line set_value put before a section it appended goes with it
        if head and not head[-1].strip() and end == len(lines):
            head = head[:-1]
        return "".join(head + lines[end:])
    return "".join(lines[: start + 1] + body + lines[end:])
