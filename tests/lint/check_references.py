#!/usr/bin/python3
"""Lint: the repository's sources, tests and docs cite only the repository itself.

A comment or document that cites a numbered section of some other document, or points at a
file outside the repository, sends the reader somewhere they cannot follow. This check fails (exit status 1, one line
per finding: PATH:LINE: what was found) when a text file in the tree contains
  * the section sign (cite a docs/ file and its section title instead; for a standard,
    write "RFC 9112, section 3.2");
  * a path to documents that live outside the repository (the team's shared reference
    directory, or the file names of the original zc.resumelb notes kept there).

Usage: check_references.py [ROOT]   (ROOT defaults to the repository holding this file)

Skipped: .git, build trees (any directory holding a CMakeCache.txt, or named build*),
__pycache__, fuzzer corpora (input data, not text anyone reads), and binary files (a NUL
byte or invalid UTF-8).
"""

import os
import sys

# The patterns are spelled in pieces so that this file does not match itself.
SECTION_SIGN = "\u00a7"
FORBIDDEN = [
    (SECTION_SIGN, "section sign: cite a docs/ file and its section title instead"),
    (".." + "/shared", "path outside the repository"),
    ("shared" + "/reference", "path outside the repository"),
    ("shared" + "/seed", "path outside the repository"),
    ("zc-resumelb-" + "behaviour", "document outside the repository"),
    ("zc.resumelb-" + "README", "document outside the repository"),
]

SKIPPED_DIR_NAMES = {".git", "__pycache__", "corpus"}


def is_build_tree(path, name):
    return name.startswith("build") or os.path.exists(os.path.join(path, "CMakeCache.txt"))


def read_text(path):
    """The file's text, or None for a binary file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def check_text(text):
    """Yields (line number, message, line) for every forbidden reference in text."""
    for number, line in enumerate(text.splitlines(), 1):
        lowered = line.lower()
        for pattern, why in FORBIDDEN:
            if pattern.lower() in lowered:
                yield number, f"{why} ({pattern!r})", line.strip()


def check_tree(root):
    """Returns the findings under root as 'PATH:LINE: message: line' strings."""
    findings = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames
            if d not in SKIPPED_DIR_NAMES
            and not is_build_tree(os.path.join(dirpath, d), d))
        for name in sorted(filenames):
            if name == ".git":  # a worktree's pointer file
                continue
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            text = read_text(path)
            if text is None:
                continue
            rel = os.path.relpath(path, root)
            for number, message, line in check_text(text):
                findings.append(f"{rel}:{number}: {message}: {line}")
    return findings


def main(argv):
    if len(argv) > 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = argv[1] if len(argv) == 2 else os.path.join(os.path.dirname(__file__), "..", "..")
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        print(f"check_references: {root} is not a directory", file=sys.stderr)
        return 2
    findings = check_tree(root)
    for finding in findings:
        print(finding)
    if findings:
        print(f"check_references: {len(findings)} reference(s) to documents outside the "
              f"repository under {root}; cite docs/ (e.g. docs/design.md and a section "
              f"title) instead", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
