#!/usr/bin/env python3
"""Fails when a function in the given C++ trees is longer than a limit.

A function is a brace block whose opening brace follows a parameter list
(not an if/for/while/switch/catch), at any namespace or class depth; lambdas
inside it count toward it. Comments and string literals are blanked first.

usage: function_length.py LIMIT DIR...   (prints the longest ten)
"""
import os
import re
import sys

CONTROL = re.compile(r'\b(if|for|while|switch|catch)\s*\([^()]*(\([^()]*\))*[^()]*\)\s*$')
AFTER_PARAMS = re.compile(r'\)\s*(const|override|noexcept|final|mutable|->\s*[\w:<>,\s*&]+)*\s*$')


def blank(src):
    src = re.sub(r'//[^\n]*', '', src)
    src = re.sub(r'/\*.*?\*/', lambda m: '\n' * m.group(0).count('\n'), src, flags=re.S)
    src = re.sub(r'R"([^(]*)\((.*?)\)\1"', lambda m: '""' + '\n' * m.group(0).count('\n'), src, flags=re.S)
    src = re.sub(r'"(\\.|[^"\\\n])*"', '""', src)
    return re.sub(r"'(\\.|[^'\\\n])*'", "''", src)


def functions(path):
    s = blank(open(path, encoding="utf-8", errors="replace").read())
    out, stack, line = [], [], 1
    for i, ch in enumerate(s):
        if ch == '\n':
            line += 1
        elif ch == '{':
            pre = s[max(0, i - 300):i].rstrip()
            is_fn = bool(AFTER_PARAMS.search(pre)) and not CONTROL.search(pre)
            stack.append((is_fn, line, i))
        elif ch == '}' and stack:
            is_fn, start, at = stack.pop()
            if is_fn and not any(f for f, _, _ in stack):
                names = re.findall(r'([~\w:]+)\s*\(', s[max(0, at - 300):at])
                out.append((line - start + 1, names[-1] if names else '?', start))
    return out


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    limit = int(argv[1])
    found = []
    for root in argv[2:]:
        for dirpath, _, files in os.walk(root):
            for f in files:
                if f.endswith(('.cc', '.h')):
                    p = os.path.join(dirpath, f)
                    found += [(n, p, start, name) for n, name, start in functions(p)]
    found.sort(reverse=True)
    for n, p, start, name in found[:10]:
        print(f"{p}:{start}: {name}: {n} lines")
    over = [x for x in found if x[0] > limit]
    if over:
        print(f"function_length: {len(over)} function(s) over {limit} lines")
        return 1
    print(f"function_length: every function is at most {limit} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
