"""Strip docstrings and comments from Python source, keeping every line number (the bundle's default).

A traceback from a device names a file and a line: with this, the line is the same in the bundle as
in the released source. Tokenize-based, never ast.unparse (which renumbers): a comment is removed
and its line kept; a docstring is removed (its lines left blank) or, where the body would be empty
or other code shares its line, replaced by `...` (padded so code after it keeps its column);
trailing whitespace is dropped except inside a string. A shebang and an encoding cookie (PEP 263)
on the first two lines stay. `check()` proves each result: it parses, its AST equals the
original's modulo docstrings, and every node keeps its line and column. Works with the tokenizer
of 3.11 (an f-string is one STRING token) and of 3.12+ (PEP 701: FSTRING_START ... FSTRING_END,
where a '#' in FSTRING_MIDDLE is text, not a comment; the lines of a multi-line f-string keep
their ends as they are).
"""

import ast
import io
import re
import tokenize

COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+")
DOC_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
FSTRING_START = getattr(tokenize, "FSTRING_START", None)  # 3.12+
FSTRING_END = getattr(tokenize, "FSTRING_END", None)


class NotStrippable(ValueError):
    """The source does not strip to an equivalent module with the same line numbers."""


def _docstrings(tree):
    """The docstring Expr nodes of `tree`, with whether their body holds anything else."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, DOC_OWNERS) and node.body and isinstance(node.body[0], ast.Expr) \
                and isinstance(node.body[0].value, ast.Constant) and isinstance(node.body[0].value.value, str):
            out.append((node.body[0], len(node.body) > 1))
    return out


def _char_col(line, byte_col):
    """ast's columns count UTF-8 bytes; the lines here are text."""
    return len(line.encode("utf-8")[:byte_col].decode("utf-8"))


def strip_text(text):
    """`text` (a module's source, decoded) without docstrings and comments, same line count and numbers."""
    tree = ast.parse(text)
    lines = text.split("\n")
    keep_end = set()  # 0-based lines whose end is inside a string: no rstrip there
    comments = []
    fstring_depth, fstring_row = 0, 0
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            row, col = tok.start
            first_lines = row <= 2 and (row == 1 and tok.string.startswith("#!") or COOKIE.match(tok.string))
            if not first_lines:
                comments.append((row - 1, col))
        elif tok.type == tokenize.STRING and tok.end[0] > tok.start[0]:
            keep_end.update(range(tok.start[0] - 1, tok.end[0] - 1))
        elif tok.type == FSTRING_START:  # the whole f-string, replacement fields too (conservative)
            if fstring_depth == 0:
                fstring_row = tok.start[0]
            fstring_depth += 1
        elif tok.type == FSTRING_END:
            fstring_depth -= 1
            if fstring_depth == 0:
                keep_end.update(range(fstring_row - 1, tok.end[0] - 1))
    for row, col in comments:
        lines[row] = lines[row][:col]
    for expr, has_more in sorted(_docstrings(tree), key=lambda d: -d[0].lineno):
        first, last = expr.lineno - 1, expr.end_lineno - 1
        head = lines[first][:_char_col(lines[first], expr.col_offset)]
        tail = lines[last][_char_col(lines[last], expr.end_col_offset):]
        filler = "..."
        if tail.strip():  # `"doc"; x = 1`: `...` padded to the docstring's width, so `x` keeps its column
            width = len(lines[first][len(head):len(lines[first]) - len(tail)].encode("utf-8"))  # ast: bytes
            if first != last or width < 3:
                continue  # `"""multi\nline"""; x = 1` or `""; x`: kept rather than move `x`
            filler = filler.ljust(width)
        alone = has_more and not head.strip() and not tail.strip()
        lines[first] = head + ("" if alone else filler + tail)
        for i in range(first + 1, last + 1):
            lines[i] = ""
            keep_end.discard(i)
        keep_end.discard(first)
    return "\n".join(line if i in keep_end else line.rstrip() for i, line in enumerate(lines))


def strip_source(data, name="<source>"):
    """Bytes of a module -> stripped bytes in the same encoding, checked by check()."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)  # utf-8-sig keeps a BOM
    text = data.decode(encoding)
    try:
        out = strip_text(text)
    except (SyntaxError, tokenize.TokenError) as e:  # IndentationError is a SyntaxError
        raise NotStrippable("%s: does not parse: %s" % (name, e))
    check(text, out, name)
    return out.encode(encoding)


class _Normal(ast.NodeTransformer):
    """Both sides of the comparison: leading string and `...` statements of a docstring owner gone."""

    def _drop(self, node):
        self.generic_visit(node)
        body = node.body
        while body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and (isinstance(body[0].value.value, str) or body[0].value.value is Ellipsis):
            body = body[1:]
        node.body = body or [ast.Pass()]
        return node

    visit_Module = visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _drop


POSITIONS = ("lineno", "col_offset", "end_lineno", "end_col_offset")


def check(original, stripped, name="<source>"):
    """Raise NotStrippable unless `stripped` has as many lines and parses to `original`'s AST modulo
    docstrings with every node where it was (start and end; a docstring's owner: its start)."""
    if original.count("\n") != stripped.count("\n"):
        raise NotStrippable("%s: %d lines became %d" % (name, original.count("\n"), stripped.count("\n")))
    try:
        after = _Normal().visit(ast.parse(stripped, name))
    except SyntaxError as e:
        raise NotStrippable("%s: stripped source does not parse: %s" % (name, e))
    before = _Normal().visit(ast.parse(original, name))
    if ast.dump(before) != ast.dump(after):
        raise NotStrippable("%s: stripped source is a different program" % name)
    for a, b in zip(ast.walk(before), ast.walk(after)):
        if isinstance(a, ast.Pass) and getattr(a, "lineno", None) is None:
            continue  # made by _Normal for an emptied body
        # an owner whose last statement was its docstring now ends at the `...` that replaced it
        for attr in POSITIONS[:2] if isinstance(a, DOC_OWNERS) else POSITIONS:
            if getattr(a, attr, None) != getattr(b, attr, None):
                raise NotStrippable("%s: %s at line %s moved (%s %s -> %s)" % (
                    name, type(a).__name__, getattr(a, "lineno", "?"), attr, getattr(a, attr, None),
                    getattr(b, attr, None)))
