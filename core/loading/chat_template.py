"""Chat templates rendered within limits: a template comes from a model repo, and a repo is hostile until checked.

Jinja's sandbox keeps a template away from Python's internals, but not from the server's time and memory:
`{{ 9 ** 40000000 }}` computes for a minute, `{{ 'x' * 3000000000 }}` asks for 3 GB, and two nested
`range(100000)` loops run for hours, all inside the thread of the learner's page. So a template is rendered

- in a child process (a fresh interpreter that imports only Jinja: about 0.1 s), which is killed after
  TEMPLATE_SECONDS and, on Linux, may grow by at most TEMPLATE_MEMORY bytes (an address-space limit);
- in a sandbox that refuses, before computing them, powers and products whose result would be huge
  (over MAX_NUMBER_BITS bits, or a string or list over MAX_OUTPUT_CHARS);
- with its output counted as it streams out, and stopped past MAX_OUTPUT_CHARS.

A template that ran out of time or memory is remembered (by its SHA-256, so per repo revision) and refused at once
afterwards: a shared link to a hostile repo costs the server one TEMPLATE_SECONDS, not one per visit. Renders are
cached by their inputs (templates are called with the same few messages again and again).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import threading
from functools import lru_cache

TEMPLATE_SECONDS = 3.0  # real templates render in a millisecond or two
START_SECONDS = 30.0  # a busy server may take a while to start the child process (not the template's time)
TEMPLATE_MEMORY = 256_000_000  # bytes a render may add to the child process (Linux)
MAX_TEMPLATE_CHARS = 200_000  # the longest published templates are ~10,000 characters
MAX_OUTPUT_CHARS = 200_000  # the rendered prompt; the app's own messages are a few thousand characters
MAX_NUMBER_BITS = 4096  # integers beyond ~10^1233 are no chat prompt's business


class TemplateRefused(ValueError):
    """A chat template that cannot be rendered here: empty, over a limit, or failing; the message names the model."""


class Template(str):
    """A chat template that knows whose it is (`owner`: the repo), so that a refusal names the repo wherever the
    template is rendered from."""

    owner: str | None = None

    def __new__(cls, text: str, owner: str | None = None) -> Template:
        template = super().__new__(cls, text)
        template.owner = owner
        return template


class _Refused(Exception):
    """Raised inside the sandbox when a limit is hit (becomes TemplateRefused in the server)."""


class _Stopped(Exception):
    """The template called raise_exception: bad input for it (roles that do not alternate), not a hostile template."""


def _size(value: object) -> int | None:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else None


def _check_binop(operator: str, left: object, right: object) -> None:
    """Refuse an operation whose result would be huge, before Python computes it."""
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (left, right))
    if operator == "**" and ints and right > 0 and abs(left) > 1:
        bits = right * math.log2(abs(left))
        if bits > MAX_NUMBER_BITS:
            raise _Refused(f"it computes {left} ** {right}, a number of about {bits:,.0f} bits")
    if operator == "*":
        if ints and left.bit_length() + right.bit_length() > MAX_NUMBER_BITS:
            raise _Refused("it multiplies numbers into one of more than 4,096 bits")
        for seq, times in ((left, right), (right, left)):
            n = _size(seq)
            if n is not None and isinstance(times, int) and n * times > MAX_OUTPUT_CHARS:
                raise _Refused(f"it repeats a {type(seq).__name__} {times:,} times ({n * times:,} items)")
    if operator == "+":
        n, m = _size(left), _size(right)
        if n is not None and m is not None and n + m > MAX_OUTPUT_CHARS:
            raise _Refused(f"it joins two values into {n + m:,} characters or items")


def _sandbox():
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class BoundedSandbox(ImmutableSandboxedEnvironment):
        """Jinja's immutable sandbox (no attribute escapes, no mutation of passed-in values, ranges of at most
        100,000 items) that also refuses huge powers, products and concatenations before computing them."""

        intercepted_binops = frozenset({"**", "*", "+"})

        def call_binop(self, context, operator, left, right):
            _check_binop(operator, left, right)
            return super().call_binop(context, operator, left, right)

    def raise_exception(message: str = "") -> None:  # what transformers offers templates to stop on bad input
        raise _Stopped(f"it stops with its own message: {str(message)[:300]}")

    env = BoundedSandbox(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env


def _limit_memory(extra: int) -> None:
    """Let this (child) process grow by `extra` bytes of address space at most (Linux; elsewhere the timeout alone
    bounds a render)."""
    try:
        import resource

        with open("/proc/self/statm") as f:
            size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (size + extra, size + extra))
    except (ImportError, OSError, ValueError):
        pass


def render_here(template: str, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
    """Render in this process, in the bounded sandbox, output counted as it streams (the child's work; no timeout
    here, so the app never calls this on a repo's template directly)."""
    out, total = [], 0
    for chunk in _sandbox().from_string(template).generate(messages=messages,
                                                            add_generation_prompt=add_generation_prompt):
        total += len(chunk)
        if total > MAX_OUTPUT_CHARS:
            raise _Refused(f"its output grows past {MAX_OUTPUT_CHARS:,} characters")
        out.append(chunk)
    return "".join(out)


def _child() -> None:
    """The child process: one render request as JSON on stdin, its outcome as JSON on stdout."""
    import json

    request = json.loads(sys.stdin.read())
    _limit_memory(request["memory"])
    try:
        outcome = ["ok", render_here(request["template"], request["messages"], request["add_generation_prompt"])]
    except _Refused as err:
        outcome = ["refused", str(err)]
    except _Stopped as err:
        outcome = ["error", str(err)]
    except MemoryError:
        outcome = ["refused", f"it needs more than {request['memory'] / 1e6:.0f} MB of memory"]
    except Exception as err:  # noqa: BLE001 — Jinja's syntax, undefined-name and security errors, a template's bugs
        outcome = ["error", f"{type(err).__name__}: {str(err)[:300]}"]
    sys.stdout.write(json.dumps(outcome))


_refused: dict[str, str] = {}  # template SHA-256 → why it was refused (it ran out of time or memory)
_refused_lock = threading.Lock()
def _digest(template: str) -> str:
    return hashlib.sha256(template.encode("utf-8", "surrogatepass")).hexdigest()


def render(template: str | None, messages: list[dict[str, str]], add_generation_prompt: bool = True,
           name: str = "this model") -> str:
    """The template applied to `messages` (TemplateRefused, naming `name` or the template's owner, when it cannot
    be)."""
    name = getattr(template, "owner", None) or name
    if template is None or not str(template).strip():
        raise TemplateRefused(f"{name}'s chat template is empty: its tokenizer_config.json gives no template to "
                              "write a conversation with")
    if len(template) > MAX_TEMPLATE_CHARS:
        raise TemplateRefused(f"{name}'s chat template is {len(template):,} characters long, over the "
                              f"{MAX_TEMPLATE_CHARS:,} accepted here")
    key = tuple(tuple(sorted((str(k), str(v)) for k, v in m.items())) for m in messages)
    try:
        return _render_cached(str(template), key, add_generation_prompt)
    except TemplateRefused as err:
        raise TemplateRefused(f"{name}'s chat template {err}") from None


@lru_cache(maxsize=256)
def _render_cached(template: str, messages: tuple, add_generation_prompt: bool) -> str:
    digest = _digest(template)
    with _refused_lock:
        known = _refused.get(digest)
    if known:
        raise TemplateRefused(f"was refused before: {known}")
    kind, why = _run(template, [dict(m) for m in messages], add_generation_prompt)
    if kind == "ok":
        return why
    if kind == "refused":  # out of time, memory or a limit: the same would happen with any messages
        with _refused_lock:
            _refused[digest] = why
        raise TemplateRefused(f"was refused: {why}")
    raise TemplateRefused(f"fails: {why}")


# This file run as the child's main script, without its folder first on sys.path (core/trace.py would shadow the
# standard library's trace module).
RUN = "import runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"


def _run(template: str, messages: list[dict[str, str]], add_generation_prompt: bool) -> tuple[str, str]:
    """Render in a fresh Python process running this file as a script (it imports only Jinja): ~0.1 s, killed after
    TEMPLATE_SECONDS. A process of its own, not a fork of the server: forking a process with threads is unsafe,
    and multiprocessing would re-import the app's main module in every child."""
    request = json.dumps({"template": template, "messages": messages, "add_generation_prompt": add_generation_prompt,
                          "memory": TEMPLATE_MEMORY})
    try:
        done = subprocess.run([sys.executable, "-c", RUN, __file__], input=request, capture_output=True, text=True,
                              encoding="utf-8", errors="replace", timeout=TEMPLATE_SECONDS)
    except subprocess.TimeoutExpired:
        return "refused", f"it ran for more than {TEMPLATE_SECONDS:g} s and was stopped"
    try:
        kind, text = json.loads(done.stdout)
        return kind, text
    except ValueError:  # no answer: killed for memory where no limit could be set, or a crash
        return "refused", f"the process rendering it ended without an answer (exit status {done.returncode})"


if __name__ == "__main__":
    _child()
