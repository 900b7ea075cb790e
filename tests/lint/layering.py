#!/usr/bin/env python3
"""Fails when a source file includes across a forbidden layer arrow.

The layers (CMakeLists.txt): core <- io, render <- app <- web, cli; cli starts
the server only through include/web/vramfit/web/serve.h. Each file belongs to
the layer of the directory it sits in; each quoted #include is resolved
against the file's own directory, the include roots and src/, and the layer
of the file it names must be one the including layer may use.

usage: layering.py ROOT          check the tree at ROOT
       layering.py --self-test   check that a forbidden include is caught
"""
import os
import re
import sys
import tempfile

# layer -> directories (relative to the root) whose files belong to it
LAYERS = {
    "core": ["include/core", "src/core"],
    "io": ["include/io", "src/io", "src/catalog"],
    "render": ["include/render", "src/render"],
    "app": ["include/app", "src/app"],
    "web": ["include/web", "src/web"],
    "cli": ["src/cli"],
}
# layer -> layers it may include
ALLOWED = {
    "core": {"core"},
    "io": {"io", "core"},
    "render": {"render", "core"},
    "app": {"app", "io", "render", "core"},
    "web": {"web", "app", "io", "render", "core"},
    "cli": {"cli", "app", "io", "render", "core"},
}
# the one header of web the CLI may include
CLI_WEB_ENTRY = "include/web/vramfit/web/serve.h"
INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"', re.M)


def layer_of(rel):
    for layer, dirs in LAYERS.items():
        for d in dirs:
            if rel == d or rel.startswith(d + "/"):
                return layer
    return None


def resolve(root, including_rel, name):
    """The root-relative path a quoted include names, or None."""
    candidates = [os.path.join(os.path.dirname(including_rel), name)]
    candidates += [os.path.join(d, name) for d in
                   ("include/core", "include/io", "include/render", "include/app", "include/web", "src")]
    for c in candidates:
        c = os.path.normpath(c)
        if os.path.isfile(os.path.join(root, c)):
            return c
    return None


def check(root):
    problems = []
    for layer, dirs in LAYERS.items():
        for d in dirs:
            for dirpath, _, files in os.walk(os.path.join(root, d)):
                for f in sorted(files):
                    if not f.endswith((".h", ".cc")):
                        continue
                    path = os.path.join(dirpath, f)
                    rel = os.path.relpath(path, root)
                    text = open(path, encoding="utf-8", errors="replace").read()
                    for m in INCLUDE_RE.finditer(text):
                        target = resolve(root, rel, m.group(1))
                        if target is None:
                            continue  # a generated or system header
                        to = layer_of(target)
                        if to is None:
                            continue
                        ok = to in ALLOWED[layer] or (layer == "cli" and target == CLI_WEB_ENTRY)
                        if not ok:
                            line = text.count("\n", 0, m.start()) + 1
                            problems.append(f"{rel}:{line}: includes {m.group(1)} ({to}); "
                                            f"{layer} may use {', '.join(sorted(ALLOWED[layer]))}"
                                            + (" and web's serve.h" if layer == "cli" else ""))
    return problems


def self_test():
    with tempfile.TemporaryDirectory() as root:
        def write(rel, text):
            p = os.path.join(root, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            open(p, "w").write(text)
        write("include/core/vramfit/model.h", "")
        write("include/io/vramfit/io/gguf.h", '#include "vramfit/model.h"\n')
        write("include/render/vramfit/render.h", '#include "vramfit/model.h"\n')
        write("include/web/vramfit/web/serve.h", "")
        write("src/web/api.h", "")
        write("src/cli/cli.h", "")
        # Allowed: io -> core, cli -> web's entry header.
        write("src/io/gguf.cc", '#include "vramfit/io/gguf.h"\n#include "vramfit/model.h"\n')
        write("src/cli/commands.cc", '#include "cli.h"\n#include "vramfit/web/serve.h"\n')
        assert check(root) == [], check(root)
        # Forbidden: core -> io, render -> io, web -> cli, cli -> web internals.
        write("src/core/estimate.cc", '#include "vramfit/io/gguf.h"\n')
        write("src/render/json.cc", '\n#include "vramfit/io/gguf.h"\n')
        write("src/web/server.cc", '#include "cli/cli.h"\n')
        write("src/cli/main.cc", '#include "web/api.h"\n')
        got = check(root)
        want = ["src/cli/main.cc:1:", "src/core/estimate.cc:1:", "src/render/json.cc:2:", "src/web/server.cc:1:"]
        assert sorted(p.split(" ")[0] for p in got) == want, got
    print("layering self-test: 4 forbidden includes caught, 2 allowed ones passed")
    return 0


def main(argv):
    if len(argv) == 2 and argv[1] == "--self-test":
        return self_test()
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check(argv[1])
    for p in problems:
        print(p)
    if problems:
        print(f"layering: {len(problems)} include(s) across a forbidden arrow")
        return 1
    print("layering: no include crosses a forbidden arrow")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
