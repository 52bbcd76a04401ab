"""Tool (function) calling in the user's data: calls, results and the tool schema, read from every
layout that writes them, into one shape.

A stored turn may carry `tool_calls`: a JSON list of {"name", "arguments": {...}} (arguments parsed
from the JSON strings OpenAI and ShareGPT files hold); a `tool` turn holds a tool's result; a row may
carry `tools`, a JSON list of function schemas in OpenAI's {"type": "function", "function": {...}}
form. The layouts read:

  OpenAI fine-tuning    assistant {"tool_calls": [{"type": "function", "function": {"name", "arguments"}}]},
                        {"role": "tool", "content"}, a top-level "tools" list
  ShareGPT (LLaMA-Factory)  {"from": "function_call", "value": "{\"name\": …, \"arguments\": …}"},
                        {"from": "observation", "value": …}, a "tools" column holding a JSON string
  typed content parts   content [{"type": "text"|"reasoning"|"thinking"|"tool_call"|"tool_use"|
                        "tool_result"|"image"…}] (OpenAI, Anthropic and AI SDK message styles)

How the chat template shows them is tokens.py's part (the template's own `tools` support, or the
documented plain rendering of `plain_turns`).
"""

from __future__ import annotations

import json

TEXT_PARTS = ("text", "input_text", "output_text")
REASONING_PARTS = ("reasoning", "thinking", "reasoning_content")
CALL_PARTS = ("tool_call", "tool-call", "tool_use", "function_call")
RESULT_PARTS = ("tool_result", "tool-result", "function_result")
MEDIA_PARTS = ("image", "image_url", "input_image", "audio", "input_audio", "video", "file")

# The plain rendering, for templates without tool support (README, "Your data").
TOOLS_INTRO = ("You can call these tools. To call one, answer with <tool_call>{\"name\": …, \"arguments\": {…}}</tool_call>; "
               "its result comes back as <tool_response>…</tool_response>.")


class BadToolData(ValueError):
    """A tool call, result or schema that cannot be read; the message says what is wrong."""


def parse_json_field(value, what: str):
    """`value` itself, or the JSON a string holds (files often store calls and schemas as JSON text)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise BadToolData(f"{what}: not valid JSON ({exc.msg.removesuffix(' at')} at character {exc.pos})") from None


def normalize_call(call) -> dict:
    """{"name", "arguments": dict} from any of the call shapes (OpenAI, ShareGPT, typed parts)."""
    call = parse_json_field(call, "The tool call")
    if not isinstance(call, dict):
        raise BadToolData(f"a tool call is {type(call).__name__}, not an object with a name and arguments")
    inner = call.get("function") if isinstance(call.get("function"), dict) else call
    name = inner.get("name") or inner.get("toolName") or inner.get("tool_name")
    if not isinstance(name, str) or not name.strip():
        raise BadToolData("a tool call has no function name")
    arguments = next((inner[k] for k in ("arguments", "args", "input", "parameters") if k in inner), {})
    arguments = parse_json_field(arguments, f"The arguments of the call to {name}")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise BadToolData(f"the arguments of the call to {name} are {type(arguments).__name__}, not an object")
    return {"name": name, "arguments": arguments}


def normalize_calls(value) -> list[dict]:
    """A list of calls from one call, a list of them, or a JSON string of either."""
    value = parse_json_field(value, "The tool calls")
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise BadToolData(f"the tool calls are {type(value).__name__}, not a list")
    return [normalize_call(c) for c in value]


def normalize_tools(value) -> list[dict] | None:
    """The tool schemas as OpenAI's {"type": "function", "function": {...}} list; None for no tools."""
    if value in (None, "", [], "[]"):
        return None
    value = parse_json_field(value, "The tools")
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise BadToolData("the tools are not a list of function schemas")
    tools = []
    for tool in value:
        function = tool.get("function") if isinstance(tool.get("function"), dict) else tool
        if not isinstance(function.get("name"), str):
            raise BadToolData("a tool schema has no name")
        tools.append({"type": "function", "function": function})
    return tools or None


def read_parts(parts: list) -> dict:
    """A typed content list → {"text", "reasoning", "calls", "results", "media"}: what each part says."""
    out = {"text": [], "reasoning": [], "calls": [], "results": [], "media": 0}
    for part in parts:
        if isinstance(part, str):
            out["text"].append(part)
            continue
        kind = str(part.get("type", "text")) if isinstance(part, dict) else ""
        if kind in TEXT_PARTS:
            out["text"].append(str(part.get("text", "")))
        elif kind in REASONING_PARTS:
            out["reasoning"].append(str(part.get("text") or part.get("reasoning") or part.get("thinking") or ""))
        elif kind in CALL_PARTS:
            out["calls"].append(normalize_call(part))
        elif kind in RESULT_PARTS:
            result = next((part[k] for k in ("content", "result", "output") if k in part), "")
            out["results"].append(result if isinstance(result, str) else json.dumps(result, ensure_ascii=False))
        elif kind in MEDIA_PARTS:
            out["media"] += 1
        else:
            raise BadToolData(f"a content part has the type '{kind}', which the studio does not read")
    return out


def calls_text(calls: list[dict]) -> str:
    """Calls in the plain rendering: one <tool_call> block each."""
    return "\n".join(f"<tool_call>\n{json.dumps(c, ensure_ascii=False)}\n</tool_call>" for c in calls)


def template_calls(calls: list[dict]) -> list[dict]:
    """Calls as chat templates take them (transformers' documented form)."""
    return [{"type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls]


def plain_turns(turns: list[dict], tools: list[dict] | None) -> list[dict]:
    """The conversation with tools written as text, for templates that have no tool support: the schema
    joins the system message, calls follow the assistant's words as <tool_call> blocks, and results are
    user turns of <tool_response> blocks (consecutive ones merged, so speakers still alternate)."""
    out: list[dict] = []
    if tools:
        schema = f"{TOOLS_INTRO}\n<tools>\n{json.dumps(tools, ensure_ascii=False)}\n</tools>"
        if turns and turns[0]["role"] == "system":
            out.append({**turns[0], "content": f"{turns[0]['content']}\n\n{schema}"})
            turns = turns[1:]
        else:
            out.append({"role": "system", "content": schema})
    after_tool = False  # the last turn written holds tool results: the next result joins it
    for turn in turns:
        if turn["role"] == "tool":
            block = f"<tool_response>\n{turn['content']}\n</tool_response>"
            if after_tool:
                out[-1] = {**out[-1], "content": f"{out[-1]['content']}\n{block}"}
            else:
                out.append({"role": "user", "content": block})
            after_tool = True
            continue
        after_tool = False
        calls = turn.get("tool_calls")
        if calls:
            words = turn["content"]
            turn = {**turn, "content": f"{words}\n{calls_text(calls)}" if words else calls_text(calls)}
            turn.pop("tool_calls")
        out.append(turn)
    return out
