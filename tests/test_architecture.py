"""The codebase's seams: the recorded-name table is true, cached traces are read-only, the registry is the one list
of models, the engine imports no UI and the import graph has no cycles, pages use core's API (their imports and
their code: no recorded names, weights or masks of their own), and functions and page scripts stay short."""

import ast
import itertools
import re
from pathlib import Path

import pytest
import torch

import core.model
from core import trace
from core.loading.registry import DEFAULT_MODEL, ENTRIES, entries, find, get, load_model
from tests.conftest import tiny

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = ["tiny-stories-1m", "tiny-llama", "tiny-bert", "tiny-sinusoidal"]


def documented_names() -> set[str]:
    """The names in core.model's docstring table, with {i} for the block index."""
    return set(re.findall(r"^\| ([\w.{}]+)\s+\|", core.model.__doc__, flags=re.M)) - {"name"}


def recorded(preset: str) -> set[str]:
    model = tiny(preset, n_layers=2)
    ids = [1, 2, 3]
    return {re.sub(r"^blocks\.\d+\.", "blocks.{i}.", n) for n in trace(model, ids, record="*").names}


def test_docstring_table_equals_what_is_recorded():
    table = documented_names()
    union = set()
    for preset in FAMILIES:
        names = recorded(preset)
        assert names <= table, (preset, names - table)
        union |= names
    assert union == table, table - union  # no row documents a name that no family records


@pytest.mark.parametrize("preset", FAMILIES)
def test_every_recorded_name_is_a_module_path(preset):
    model = tiny(preset, n_layers=2)
    for name in trace(model, [1, 2, 3], record="*").names:
        prefix = name.rpartition(".")[0]
        model.get_submodule(prefix)  # raises AttributeError when the name does not match the module tree


def test_cached_trace_cannot_be_written_through_what_it_hands_out():
    model = tiny("tiny-stories-1m")
    tr = trace(model, [5, 6, 7, 8], record="*", lens_top_k=2)
    before = {name: tr[name] for name in tr.names}
    logits, probs, lens = tr.logits, tr.probs, tr.lens_ids
    handed = [tr[name] for name in tr.names] + [tr.pattern(0), tr.embed(), tr.resid_post(1), tr.resid_pre(0),
                                                  tr.z(0), *tr.qkv(0), tr.attn_scores(0), tr.hidden(),
                                                  tr.logits, tr.lens_ids, tr.lens_probs]
    for t in handed:
        t.fill_(True if t.dtype == torch.bool else 7)
    for name, value in before.items():
        assert torch.equal(tr[name], value), name
    assert torch.equal(tr.logits, logits) and torch.equal(tr.probs, probs) and torch.equal(tr.lens_ids, lens)
    assert not tr.hidden()[0, 0] and tr.hidden()[0, 1]


def test_long_trace_patterns_are_fresh_too():
    model = tiny("tiny-stories-1m", n_ctx=300)
    tr = trace(model, list(range(1, 290)), record="blocks.*.attn.hook_pattern")
    assert tr.compact_names
    first = tr.pattern(0)
    tr.pattern(0).zero_()
    assert torch.equal(tr.pattern(0), first)


def test_hidden_is_the_models_own_mask():
    decoder = trace(tiny("tiny-llama"), [1, 2, 3])
    assert torch.equal(decoder.hidden(), torch.ones(3, 3, dtype=torch.bool).triu(1))
    encoder = trace(tiny("tiny-bert"), [1, 2, 3])
    assert not encoder.hidden().any()


def test_registry_is_the_one_list_of_models():
    assert list(ENTRIES)[0] == DEFAULT_MODEL and get(DEFAULT_MODEL).history is not None
    assert get("gpt2").history is None and get("gpt2").source == "hub"
    assert all(e.available for e in entries())
    encoder = find(encoder=True)
    assert encoder is None or (encoder.encoder and encoder.available)
    assert find(encoder=False).name == DEFAULT_MODEL
    with pytest.raises(ValueError, match="unknown model"):
        get("no-such-model")
    with pytest.raises(ValueError, match="unknown model"):
        load_model("no-such-model")


def test_the_engine_api_is_one_import_away():
    from core import fine_tune, generate, load_model, trace  # noqa: F401  the names the README uses
    from core.learning import fine_tune as where_it_lives

    assert fine_tune is where_it_lives


# --- the import graph of core/ and pages/, read with ast: every name of `import a, b`, `from x import y`, relative
# imports, and imports inside functions (a lazy import still makes the two modules depend on each other); only
# what sits under `if TYPE_CHECKING:` is left out

def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources(*folders: str) -> dict[str, Path]:
    return {module_name(p): p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))}


def runtime_nodes(tree: ast.AST):
    """Every node, less what sits under `if TYPE_CHECKING:` (read by type checkers, never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            todo += node.orelse
        else:
            todo += ast.iter_child_nodes(node)


def imports(module: str, path: Path) -> list[tuple[str, str | None, int]]:
    """(module imported, name taken from it or None, line) for every import statement the file runs."""
    found = []
    for node in runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the file's own package up
                package = module if path.name == "__init__.py" else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}".rstrip(".")
            found += [(base, alias.name, node.lineno) for alias in node.names]
    return sorted(found, key=lambda item: item[2])


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module → the project modules it imports. `from x import y` points at x.y when that is a module, else at x."""
    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        targets = {known(f"{base}.{name}") if name else known(base) for base, name, _ in imports(module, path)}
        graph[module] = targets - {None, module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan): each holds at least one cycle."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = itertools.count()

    def visit(v: str) -> None:
        index[v] = low[v] = next(counter)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_engine_imports_no_ui():
    for module, path in sources("core").items():
        for base, _, line in imports(module, path):
            top = base.split(".")[0]
            assert top not in {"streamlit", "plotly", "pages", "tools"}, f"{path.relative_to(ROOT)}:{line} imports {base}"


def test_import_graph_of_core_and_pages_has_no_cycles():
    graph = import_graph(sources("core", "pages"))
    assert graph["pages.common.cache"] >= {"core", "core.interpret.heads"}  # the graph sees what a file imports
    loops = [[f"{a} → {b}" for a in group for b in sorted(graph[a]) if b in group] for group in cycles(graph)]
    assert not loops, f"import cycles: {loops}"


# --- pages use core's API: what they import (ast) and what their code types

TRACES_HERE = "pages/common/cache.py"  # the one way pages get traces
RECORD_SET = re.compile(r"^Recorder$|_RECORD$|_record$")  # building a recorder or choosing a record set
MODEL_INSIDES = ("safetensors", "torch.nn")  # modules (and all below them) a page never imports
WEIGHT_READERS = re.compile(r"^(read_|load_|save_)|^(assign|empty_model)$")  # core.loading.weights' loaders (the registry's)


def page_import_breaks(rel: str, base: str, name: str | None) -> str | None:
    """Why this import breaks the pages' rule, or None. The rule: a page gets its traces one way, through
    pages.common.cache, and asks core for what it draws; it never chooses a record set, builds a recorder, traces on
    its own, reads weights, or imports the model's class."""
    full = f"{base}.{name}" if name else base
    if rel != TRACES_HERE and name and RECORD_SET.search(name):
        return "chooses what is recorded outside pages.common.cache (a view asks for what it draws)"
    if rel != TRACES_HERE and name == "trace" and base in {"core", "core.trace"}:
        return "traces outside pages.common.cache"
    if name == "Transformer" or any(full == m or full.startswith(m + ".") for m in MODEL_INSIDES):
        return "reads weights or the model's insides"
    if base == "core.loading.weights" and (name is None or WEIGHT_READERS.search(name)):
        return "reads weights or the model's insides"
    if base.split(".")[0] == "tools":
        return "imports a command-line tool"
    return None


# Imports of today's pages that break the rule, to be moved behind the one trace per text. The test fails on any
# other, and on any entry here that a page no longer has (so the list only shrinks).
PENDING = {
    ("pages/feed_forward.py", "mlp_record"),
    ("pages/fine_tuning.py", "trace"),
}


def test_pages_import_core_api_not_recording_or_weights():
    broken, seen = [], set()
    for module, path in sources("pages").items():
        rel = str(path.relative_to(ROOT))
        for base, name, line in imports(module, path):
            why = page_import_breaks(rel, base, name)
            if why and (rel, name) in PENDING:
                seen.add((rel, name))
            elif why:
                broken.append(f"{rel}:{line} imports {name or base} from {base}: {why}")
    assert not broken, "\n".join(broken)
    assert seen == PENDING, f"no longer imported, remove from PENDING: {sorted(PENDING - seen)}"


def test_page_import_rule_catches_each_kind():
    assert page_import_breaks("pages/x.py", "core.model", "Recorder")
    assert page_import_breaks("pages/x.py", "core.interpret.lens", "SUMMARY_RECORD")
    assert page_import_breaks("pages/x.py", "core", "trace") and not page_import_breaks(TRACES_HERE, "core", "trace")
    assert page_import_breaks("pages/x.py", "torch.nn.functional", None) and page_import_breaks("pages/x.py", "torch.nn", "functional")
    assert page_import_breaks("pages/x.py", "core.model", "Transformer") and page_import_breaks("pages/x.py", "core.loading.weights", "load_dir")
    assert not page_import_breaks("pages/x.py", "core.loading.weights", "cache_dir")
    assert not page_import_breaks("pages/x.py", "core.interpret.attention_math", "query_math")
    assert not page_import_breaks("pages/x.py", "core.trace", "token_limit")


def page_code_breaks(tree: ast.AST, model_names: set[str]) -> list[tuple[int, str]]:
    """(line, what) for each recorded name, weight, hand-made mask, kv-head map or model named by a constant in the
    code (strings and f-string parts, attributes, keywords, comparisons; comments are not code). The one "gpt2"
    allowed is the tokenizer of that name."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.search(r"hook_|blocks\.", node.value):
                found.append((node.lineno, f"recorded name {node.value!r}"))
            found += [(node.lineno, f"model {m!r} named") for m in model_names if m in node.value]
        elif isinstance(node, ast.Attribute) and node.attr in {"weight", "triu", "tril"}:
            found.append((node.lineno, f".{node.attr}"))
        elif isinstance(node, ast.keyword) and node.arg == "causal":
            found.append((node.value.lineno, "causal= (a mask of its own)"))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.FloorDiv):
            if any(isinstance(s, ast.Attribute) and s.attr == "n_heads" for s in (node.left, node.right)):
                found.append((node.lineno, "n_heads // (a kv-head map of its own)"))
        elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
            sides = [node.left, *node.comparators]
            names = {getattr(n, "id", None) or getattr(n, "attr", None) for n in sides}
            if "DEFAULT_MODEL" in names or ("model_name" in names and any(isinstance(n, ast.Constant) for n in sides)):
                found.append((node.lineno, "compares a model's name with a constant"))
    return found


def test_page_code_has_no_recorded_names_weights_or_masks():
    model_names = {n for n in ENTRIES if n != "gpt2"}
    broken = [f"{path.relative_to(ROOT)}:{line}: {what}" for path in sources("pages").values()
              for line, what in page_code_breaks(ast.parse(path.read_text()), model_names)]
    assert not broken, "\n".join(broken)


# --- short functions, and a page script (Streamlit runs it top to bottom: its module-level code is its function)

FUNCTION_LINES = 60
PAGE_SCRIPT_LINES = 200  # a page of a few sections, each block within FUNCTION_LINES


def script_code(tree: ast.Module) -> list[ast.stmt]:
    """A module's own code: its top-level statements less the docstring, imports, functions and classes."""
    skip = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
    body = tree.body[1:] if ast.get_docstring(tree) is not None else tree.body
    return [n for n in body if not isinstance(n, skip)]


def lines(node: ast.AST) -> int:
    return node.end_lineno - node.lineno + 1


def test_functions_and_page_scripts_stay_short():
    long = []
    for path in [*sources("core").values(), *sources("pages").values()]:
        rel, tree = path.relative_to(ROOT), ast.parse(path.read_text())
        long += [f"{rel}:{n.lineno} {n.name} has {lines(n)} lines" for n in ast.walk(tree)
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and lines(n) > FUNCTION_LINES]
        if rel.parent.name != "pages":
            continue
        code = script_code(tree)
        long += [f"{rel}:{n.lineno} a top-level block of {lines(n)} lines" for n in code
                 if isinstance(n, (ast.If, ast.For, ast.While, ast.With, ast.Try)) and lines(n) > FUNCTION_LINES]
        total = sum(lines(n) for n in code)
        if total > PAGE_SCRIPT_LINES:
            long.append(f"{rel}: the page script has {total} lines of module-level code")
    assert not long, "\n".join(long)


def test_no_page_statement_is_written_by_streamlits_magic():
    """Streamlit's magic st.writes every bare expression of a page script that is not a call or a docstring: a
    conditional expression (`a() if x else b()`) once printed "None" at the end of every page. The rule is checked
    on a snippet that breaks it, then on app.py and every page."""

    def magic_written(source: str) -> list[int]:
        lines = []
        for node in ast.walk(ast.parse(source)):
            for i, statement in enumerate(getattr(node, "body", []) if isinstance(getattr(node, "body", None), list)
                                          else []):
                if not isinstance(statement, ast.Expr):
                    continue
                value = statement.value
                docstring = i == 0 and isinstance(value, ast.Constant) and isinstance(value.value, str) and isinstance(
                    node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                if not (docstring or isinstance(value, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom))):
                    lines.append(statement.lineno)
        return lines

    assert magic_written('"""doc"""\nf() if x else g()\ntry:\n    "stray"\nfinally:\n    h()\n') == [2, 4]
    scripts = [ROOT / "app.py", *sorted((ROOT / "pages").rglob("*.py"))]
    found = {str(p.relative_to(ROOT)): magic_written(p.read_text(encoding="utf-8")) for p in scripts}
    assert not {p: lines for p, lines in found.items() if lines}
