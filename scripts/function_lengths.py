#!/usr/bin/env python3
"""Lists the C++ functions longer than a limit (STYLE.md: a function does one thing).

Usage: scripts/function_lengths.py [--max N] [--longest K] DIR_OR_FILE...

Scans every .cpp and .hpp file under the given directories for function bodies and prints
each function longer than N lines (default 80) as `file:line: name: L lines`, longest first;
the exit status is 1 when there is one. A function's length counts from its signature's first
line (after any `template <...>` line) to its closing brace. --longest K also prints the K
longest functions, whatever their length.

The parser is a heuristic, not a C++ front end: comments, string and character literals
(raw strings and digit separators included) and preprocessor lines are blanked first; then a
brace at namespace or class scope opens a function body when the declaration before it has a
parameter list and is not a class, struct, union or enum. Everything inside a body (lambdas,
local classes) counts towards that function. Braces of member initialisers and of variable
initialisers are skipped.
"""
import argparse
import os
import re
import sys

EXTENSIONS = (".cpp", ".hpp")
IDENT = re.compile(r"[A-Za-z0-9_]")


def blank(text):
    """Returns text with comments, literals' contents and preprocessor lines replaced by spaces
    (newlines kept, so offsets and line numbers stay valid)."""
    out = list(text)
    n = len(text)
    i = 0
    line_start = True  # only whitespace since the last newline

    def wipe(a, b):
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if c == "\n":
            line_start = True
            i += 1
            continue
        if line_start and c == "#":
            j = i
            while j < n:  # to the end of the line, following backslash continuations
                if text[j] == "\n" and text[j - 1] != "\\":
                    break
                j += 1
            wipe(i, j)
            i = j
            continue
        if not c.isspace():
            line_start = False
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            wipe(i, j)
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            wipe(i, j)
            i = j
        elif c == '"':
            # A raw string R"delim( ... )delim", possibly with an encoding prefix.
            m = re.search(r"(?:u8|u|U|L)?R$", text[max(0, i - 3):i])
            before = i - (len(m.group(0)) if m else 0) - 1
            if m and (before < 0 or not IDENT.match(text[before])):
                open_paren = text.find("(", i)
                delim = text[i + 1:open_paren]
                end = text.find(")" + delim + '"', open_paren)
                end = n if end < 0 else end + len(delim) + 2
                wipe(i + 1, end - 1)
                i = end
                continue
            j = i + 1
            while j < n and text[j] != '"' and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            wipe(i + 1, min(j, n))
            i = j + 1
        elif c == "'":
            # A digit separator (1'000'000) when the token it sits in starts with a digit.
            k = i
            while k > 0 and (IDENT.match(text[k - 1]) or text[k - 1] in ".'"):
                k -= 1
            if k < i and text[k].isdigit():
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != "'" and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            wipe(i + 1, min(j, n))
            i = j + 1
        else:
            i += 1
    return "".join(out)


def matching(text, i, open_char, close_char):
    """The index just past the bracket that closes the one at i."""
    depth = 0
    for j in range(i, len(text)):
        if text[j] == open_char:
            depth += 1
        elif text[j] == close_char:
            depth -= 1
            if depth == 0:
                return j + 1
    return len(text)


def strip_template_prefix(head):
    """head without leading `template <...>` clauses (the offset of what remains)."""
    pos = 0
    while True:
        m = re.compile(r"\s*template\s*<").match(head, pos)
        if not m:
            return pos
        depth = 0
        j = m.end() - 1
        while j < len(head):
            if head[j] == "(":
                j = matching(head, j, "(", ")")  # `(a > b)` inside the parameters
                continue
            if head[j] == "<":
                depth += 1
            elif head[j] == ">":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        pos = j + 1


ACCESS = re.compile(r"\s*(public|private|protected)\s*:(?!:)")
CLASS_HEAD = re.compile(r"\s*(typedef\s+)?(class|struct|union|enum)\b")
NAMESPACE_HEAD = re.compile(r"\s*(inline\s+)?namespace\b|\s*extern\s*\"")
INIT_LIST = re.compile(r"\)\s*(noexcept\s*(\([^)]*\))?)?\s*:(?!:)")


def function_name(head):
    """The (qualified) name before the declaration's first parameter list."""
    paren = head.find("(")
    if head[:paren].rstrip().endswith("operator"):
        paren = head.find("(", paren + 2)
    m = re.search(r"((?:[A-Za-z_~][A-Za-z0-9_]*\s*(?:<[^()]*>)?\s*::\s*)*~?[A-Za-z_][A-Za-z0-9_]*"
                  r"(?:\s*\(\s*\)|\s*[^\sA-Za-z0-9_(]+)?)\s*$", head[:paren])
    if m:
        return re.sub(r"\s+", "", m.group(1))
    return "<lambda>" if "[" in head[:paren] else "?"


def functions(text):
    """(name, first line, last line) of every function body at namespace or class scope."""
    code = blank(text)
    line_of = []
    line = 1
    for ch in code:
        line_of.append(line)
        if ch == "\n":
            line += 1
    found = []

    def scan(start, end):
        head_start = start
        i = start
        while i < end:
            c = code[i]
            if c in ";}":
                head_start = i + 1
            elif c == "(":
                i = matching(code, i, "(", ")")  # parameter lists and default arguments
                continue
            elif c == "{":
                head = code[head_start:i]
                m = ACCESS.match(head)
                offset = m.end() if m else 0
                offset += strip_template_prefix(head[offset:])
                decl = head[offset:]
                close = matching(code, i, "{", "}")
                if NAMESPACE_HEAD.match(decl) or (CLASS_HEAD.match(decl) and not decl.lstrip().startswith("enum")):
                    scan(i + 1, close - 1)  # a scope that holds functions
                elif "(" in decl and not re.search(r"=\s*$", decl):
                    init_list = INIT_LIST.search(decl)
                    before = code[:i].rstrip()[-1:]
                    if init_list and (IDENT.match(before) or before == ">"):
                        i = close  # a member initialiser `x_{...}`: the body is still to come
                        continue
                    first = head_start + offset + (len(decl) - len(decl.lstrip()))
                    found.append((function_name(decl), line_of[first], line_of[close - 1]))
                i = close
                head_start = i
                continue
            i += 1

    scan(0, len(code))
    return found


def source_files(paths):
    for path in paths:
        if os.path.isfile(path):
            yield path
            continue
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for f in sorted(files):
                if f.endswith(EXTENSIONS):
                    yield os.path.join(root, f)


def main():
    parser = argparse.ArgumentParser(description="List C++ functions longer than a limit.")
    parser.add_argument("paths", nargs="+", help="directories (searched recursively) or files")
    parser.add_argument("--max", type=int, default=80, help="the longest a function may be, in lines")
    parser.add_argument("--longest", type=int, default=0, help="also list the K longest functions")
    args = parser.parse_args()

    rows = []
    for path in source_files(args.paths):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for name, first, last in functions(text):
            rows.append((last - first + 1, path, first, name))
    rows.sort(key=lambda r: (-r[0], r[1], r[2]))

    if args.longest:
        print(f"The {min(args.longest, len(rows))} longest of {len(rows)} functions:")
        for length, path, first, name in rows[: args.longest]:
            print(f"  {path}:{first}: {name}: {length} lines")
    too_long = [r for r in rows if r[0] > args.max]
    for length, path, first, name in too_long:
        print(f"{path}:{first}: {name}: {length} lines (more than {args.max})")
    if too_long:
        print(f"{len(too_long)} function(s) longer than {args.max} lines", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
