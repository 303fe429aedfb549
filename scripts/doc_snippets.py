#!/usr/bin/env python3
"""Turns every ```cpp block of a Markdown file into C++ that CTest compiles (and runs), so the
docs cannot drift from the API.

    scripts/doc_snippets.py README.md build/doc_snippets/readme.cpp [--dist-out FILE] [--onnx-out FILE]

The blocks of a file go, in order, into one namespace of one translation unit, so a guide's
later blocks may use what its earlier ones define:
- a block with `int main(` keeps its code; its `main` becomes `run_<n>` and the generated
  `main` calls every such function in order (its output is what the docs show);
- any other block is split: definitions that start at column 0 (a struct, class, template
  or function, up to the `}` or `};` at column 0 that ends them) stay at namespace scope, the
  remaining statements form the body of `void body_<n>()`, compiled, not run.

What a block uses without declaring it comes from an HTML comment right before the block,
invisible on the rendered page:

    <!-- snippet
    Tensor ids = zeros({2, 5}, DType::i64);      // lines for the start of body()
    global: struct Model : nn::UnaryModule { … };  // a line for namespace scope
    -->

A block whose code includes <xgrad/distributed.hpp> goes to --dist-out instead (built only with the
distributed module); one that includes <xgrad/onnx.hpp> goes to --onnx-out (built and run only with
the onnx module). A block marked `<!-- snippet skip: reason -->` is not extracted: use it only for
shell-like pseudo-code, and give the reason.
"""
import re
import sys

DEFINITION = re.compile(r'^(struct|class|template|enum|namespace|[A-Za-z_][\w:<>,]*[\s&*]+[A-Za-z_]\w*\s*\(.*\)\s*(const\s*)?\{)')


def blocks(text):
    """(context lines, global lines, code, first line number, skip reason) per ```cpp block."""
    lines = text.split('\n')
    out = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == '```cpp':
            setup, glob, skip = [], [], None
            # The HTML comment ending on the line before the fence (blank lines allowed).
            j = i - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            if j >= 0 and lines[j].strip().endswith('-->'):
                k = j
                while k >= 0 and not lines[k].lstrip().startswith('<!--'):
                    k -= 1
                comment = lines[k:j + 1]
                head = comment[0].strip()
                if head.startswith('<!-- snippet skip:'):
                    skip = head[len('<!-- snippet skip:'):].rstrip('->').strip()
                elif head.startswith('<!-- snippet'):
                    for c in comment[1:-1] if comment[-1].strip() == '-->' else comment[1:]:
                        if c.strip().startswith('global:'):
                            glob.append(c.strip()[len('global:'):].strip())
                        else:
                            setup.append(c)
            end = i + 1
            while lines[end].strip() != '```':
                end += 1
            indent = len(lines[i]) - len(lines[i].lstrip())  # a block inside a list item
            code = [c[indent:] if not indent or c[:indent].isspace() else c.lstrip() for c in lines[i + 1:end]]
            out.append((setup, glob, code, i + 2, skip))
            i = end
        i += 1
    return out


def split_definitions(code):
    """Column-0 definitions (namespace scope) and the other lines (a function body)."""
    top, body = [], []
    i = 0
    while i < len(code):
        line = code[i]
        if DEFINITION.match(line) or (line.startswith('struct ') or line.startswith('class ')):
            chunk = [line]
            while not re.match(r'^\};?\s*(//.*)?$', chunk[-1]) and i + 1 < len(code):
                i += 1
                chunk.append(code[i])
            top.extend(chunk)
        else:
            body.append(line)
        i += 1
    return top, body


def translate(md_path, setup, glob, code, line, n):
    """(includes, namespace-scope code, body statements, name of its run function or None)."""
    origin = f'// {md_path}, the block at line {line}'
    includes = [c for c in code if c.startswith('#include')]
    code = [c for c in code if not c.startswith('#include') and c.strip() != 'using namespace xgrad;']
    text = '\n'.join(code)
    if re.search(r'\bint main\(', text):
        text = re.sub(r'\bint main\(', f'int run_{n}(', text)
        end = text.rstrip().rfind('}')  # main's closing brace
        if not text[:end].rstrip().split('\n')[-1].strip().startswith('return'):
            text = text[:end] + '  return 0;\n}'  # main's implicit return 0, made explicit
        if setup:  # at the start of main's body (definitions may come before main)
            brace = text.find('{', text.find(f'int run_{n}('))
            text = text[:brace + 1] + '\n' + '\n'.join(setup) + text[brace + 1:]
        runner = f'run_{n}' if 'int argc' not in text else None
        return includes, [origin, *glob, text], [], runner
    top, body = split_definitions(code)
    return includes, [origin, *glob, *top], [origin, *setup, *body], None


def main():
    args = sys.argv[1:]
    extra = {}
    for flag in ('--dist-out', '--onnx-out'):
        if flag in args:
            k = args.index(flag)
            extra[flag] = args[k + 1]
            del args[k:k + 2]
    dist_out, onnx_out = extra.get('--dist-out'), extra.get('--onnx-out')
    md_path, out = args
    parts = md_path.replace('\\', '/').split('/')
    name = '/'.join(parts[-2:]) if len(parts) > 1 and parts[-2] == 'docs' else parts[-1]
    text = open(md_path, encoding='utf-8').read()
    # A guide whose blocks continue each other (variables of one used by the next) says so
    # once: its statements then form one body, in order.
    continued = '<!-- snippets: continued -->' in text
    units = {'main': ([], [], []), 'dist': ([], [], []), 'onnx': ([], [], [])}
    bodies = {'main': [], 'dist': [], 'onnx': []}
    counts = {'main': 0, 'dist': 0, 'onnx': 0}
    for n, (setup, glob, code, line, skip) in enumerate(blocks(text), 1):
        if skip is not None:
            if not skip:
                sys.exit(f'{md_path}:{line}: a skipped snippet must say why')
            continue
        unit = ('dist' if any('xgrad/distributed.hpp' in c for c in code) else
                'onnx' if any('xgrad/onnx.hpp' in c for c in code) else 'main')
        includes, top, body, runner = translate(md_path, setup, glob, code, line, n)
        counts[unit] += 1
        units[unit][0].extend(includes)
        units[unit][1].extend(top)
        if body and not continued:
            units[unit][1].extend([f'[[maybe_unused]] void body_{n}() {{', *body, '}'])
        elif body:
            bodies[unit].extend(body)
        if runner:
            units[unit][2].append(runner)
    for unit in units:
        if bodies[unit]:
            units[unit][1].extend(['[[maybe_unused]] void body() {', *bodies[unit], '}'])
    for unit, path in (('main', out), ('dist', dist_out), ('onnx', onnx_out)):
        includes, sources, runners = units[unit]
        if path is None:
            if sources:
                sys.exit(f'{md_path}: {unit} snippets need --{unit}-out')
            continue
        head = ['// Generated by scripts/doc_snippets.py from ' + md_path + ': do not edit.',
                '#include <xgrad/xgrad.hpp>', *sorted(set(includes)),
                '#include <cstdio>', '#include <fmt/format.h>', 'using namespace xgrad;', '',
                'namespace doc {']
        count = counts[unit]
        tail = ['}  // namespace doc', '', 'int main() {', *[f'  if (int rc = doc::{r}()) return rc;' for r in runners],
                f'  std::puts("{count} blocks of {name} compiled, {len(runners)} run");', '}']
        with open(path, 'w', encoding='utf-8') as f:
            f.write('\n'.join(head + sources + tail) + '\n')


if __name__ == '__main__':
    main()
