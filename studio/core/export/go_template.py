"""The small subset of Go's text/template that Ollama TEMPLATEs written by the studio use, rendered as
Ollama would: so a TEMPLATE is checked against the chat template before it is written (ollama.py)."""

from __future__ import annotations

import json
import re

_GO_ACTION = re.compile(r"\{\{(-\s)?\s*(.*?)\s*(\s-)?\}\}", re.S)


def render_go_template(template: str, messages: list[dict], system: str = "") -> str:
    """Render the small subset of Go's text/template that the studio's TEMPLATEs use, as Ollama would:
    text, `{{ .Field }}`, `{{ range .Messages }}`, `{{ if }}`/`{{ else if }}`/`{{ else }}` with `eq`/`ne`
    and plain fields, `{{- ` / ` -}}` whitespace trimming. Anything else raises ValueError."""
    tokens: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    for m in _GO_ACTION.finditer(template):
        text = template[pos:m.start()]
        if trim_next:
            text = text.lstrip()
        if m.group(1):
            text = text.rstrip()
        tokens.append(("text", text))
        tokens.append(("action", m.group(2).strip()))
        trim_next = bool(m.group(3))
        pos = m.end()
    tail = template[pos:]
    tokens.append(("text", tail.lstrip() if trim_next else tail))
    nodes, i, end = _go_parse(tokens, 0)
    if end is not None or i != len(tokens):
        raise ValueError(f"unbalanced template: unexpected {{{{ {end} }}}}")
    msgs = [{"Role": m["role"], "Content": m["content"]} for m in messages]
    if system and not any(m["Role"] == "system" for m in msgs):
        msgs.insert(0, {"Role": "system", "Content": system})
    prompt = next((m["Content"] for m in reversed(msgs) if m["Role"] == "user"), "")
    root = {"Messages": msgs, "System": system or next((m["Content"] for m in msgs if m["Role"] == "system"), ""),
            "Prompt": prompt}
    out: list[str] = []
    _go_exec(nodes, root, root, out)
    return "".join(out)


def _go_parse(tokens, i):
    """(nodes, next index, the terminating keyword: 'end', 'else', 'else if ...' or None at the end)."""
    nodes = []
    while i < len(tokens):
        kind, value = tokens[i]
        i += 1
        if kind == "text":
            if value:
                nodes.append(("text", value))
            continue
        if value == "end" or value == "else" or value.startswith("else if "):
            return nodes, i, value
        if value.startswith("range "):
            body, i, end = _go_parse(tokens, i)
            if end != "end":
                raise ValueError("range without end")
            nodes.append(("range", value[6:].strip(), body))
        elif value.startswith("if "):
            branches, otherwise, cond = [], [], value[3:].strip()
            while True:
                body, i, end = _go_parse(tokens, i)
                branches.append((cond, body))
                if end == "end":
                    break
                if end == "else":
                    otherwise, i, end = _go_parse(tokens, i)
                    if end != "end":
                        raise ValueError("else without end")
                    break
                if end and end.startswith("else if "):
                    cond = end[8:].strip()
                    continue
                raise ValueError("if without end")
            nodes.append(("if", branches, otherwise))
        elif re.fullmatch(r"\.\w*", value):
            nodes.append(("field", value))
        else:
            raise ValueError(f"unsupported action {{{{ {value} }}}}")
    return nodes, i, None


def _go_value(expr: str, dot, root):
    if expr.startswith('"') and expr.endswith('"') and len(expr) >= 2:
        return json.loads(expr)
    if expr == ".":
        return dot
    if re.fullmatch(r"\$?\.\w+", expr):
        scope = root if expr.startswith("$") else dot
        return scope.get(expr.lstrip("$")[1:], "") if isinstance(scope, dict) else ""
    raise ValueError(f"unsupported expression {expr}")


def _go_cond(cond: str, dot, root) -> bool:
    parts = re.findall(r'"(?:[^"\\]|\\.)*"|\S+', cond)
    if len(parts) == 3 and parts[0] in ("eq", "ne"):
        same = _go_value(parts[1], dot, root) == _go_value(parts[2], dot, root)
        return same if parts[0] == "eq" else not same
    if len(parts) == 2 and parts[0] == "not":
        return not _go_value(parts[1], dot, root)
    if len(parts) == 1:
        return bool(_go_value(parts[0], dot, root))
    raise ValueError(f"unsupported condition {cond}")


def _go_exec(nodes, dot, root, out: list[str]) -> None:
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "field":
            out.append(str(_go_value(node[1], dot, root)))
        elif node[0] == "range":
            for item in _go_value(node[1], dot, root) or []:
                _go_exec(node[2], item, root, out)
        elif node[0] == "if":
            for cond, body in node[1]:
                if _go_cond(cond, dot, root):
                    _go_exec(body, dot, root, out)
                    break
            else:
                _go_exec(node[2], dot, root, out)
