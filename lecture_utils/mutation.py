"""Mutation testing of the checks: does every small mistake in a solution get caught, and named?

For each exercise, the solution in ``solutions/`` (the lines between ``# BEGIN SOLUTION`` and ``# END SOLUTION``)
is edited mechanically, one edit per mutant, on its syntax tree:

========== ===========================================================================================
operator   edit
========== ===========================================================================================
dim        a ``dim=``/``axis=`` argument changed (``-1`` -> ``-2``, ``0``, ...)
swap       the operands of ``@``, ``-``, ``/``, ``**`` swapped
delete     a statement deleted (replaced by ``pass``), or a decorator removed
off-by-one an integer constant changed by one (``t + 1`` -> ``t + 2``, ``[:, -1]`` -> ``[:, -2]``)
transpose  an operand of ``@`` transposed (``.transpose(-2, -1)``)
keepdim    ``keepdim=True`` dropped
constant   a float doubled (``0.0`` -> ``1.0``), ``'-inf'`` <-> ``'inf'``, ``True`` <-> ``False``
call       a call removed: ``f(x, ...)`` -> ``x``, ``x.method(...)`` -> ``x``
========== ===========================================================================================

Each mutant is defined in a namespace like the notebook's at that point (its imports, the earlier exercises'
solutions, its literal globals and the few other variables the cell reads) and handed to the exercise's check,
in a worker process with a time limit, so that a mutant that hangs cannot hang the tool. A mutant is *killed
specifically* when the check fails with a diagnosis that names a mistake, *killed generically* when the check
fails with a last-resort message (:func:`lecture_utils.checks._core.is_generic`: "differs from the reference",
the learner's crash as it is, the time limit), and *survives* when the check passes it. A survivor is either a
hole in the check or an equivalent mutant (it computes the same thing); the equivalent ones are listed, each
with a one-line reason, in ``lecture_utils/checks/equivalent_mutants.toml``.

    python -m lecture_utils.authoring mutants                  # every exercise
    python -m lecture_utils.authoring mutants --exercise 4.1   # one exercise, survivors listed
"""

from __future__ import annotations

import ast
import builtins
import copy
import dataclasses
import io
import multiprocessing
import os
import sys
import time
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from lecture_utils.chapters import BEGIN, END, EXERCISE_TAG, exercise_key, header_of

EQUIVALENT_FILE = Path(__file__).resolve().parent / "checks" / "equivalent_mutants.toml"
_MAGIC = ("%", "!")


# ---------------------------------------------------------------------------------------------
# the exercises of solutions/
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ExerciseCell:
    id: str
    notebook: Path
    index: int  # of the exercise cell in the notebook
    source: str
    solution_lines: tuple[tuple[int, int], ...]  # (first, last) line (1-based) strictly inside each BEGIN/END
    check: str  # the check's name in lecture_utils.checks
    args: tuple[str, ...]  # the names passed to it, in order


def _python(source: str) -> str:
    """A cell's source without IPython magics, so that ``ast`` can parse it."""
    return "\n".join("" if line.lstrip().startswith(_MAGIC) else line for line in source.splitlines())


def _check_call(source: str) -> tuple[str, tuple[str, ...]] | None:
    for node in ast.walk(ast.parse(_python(source))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "check"
                and all(isinstance(a, ast.Name) for a in node.args)):
            return node.func.attr, tuple(a.id for a in node.args)
    return None


def find_exercises(root: str | Path = ".") -> list[ExerciseCell]:
    """Every exercise cell of ``root/solutions/*.ipynb``, with the check its next cell calls."""
    found = []
    for path in sorted((Path(root) / "solutions").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if EXERCISE_TAG not in cell.metadata.get("tags", []):
                continue
            exercise_id = header_of(cell.source)[0]
            lines = cell.source.splitlines()
            begins = [n for n, line in enumerate(lines, 1) if line.strip().startswith(BEGIN)]
            ends = [n for n, line in enumerate(lines, 1) if line.strip().startswith(END)]
            call = next((c for d in nb.cells[i + 1:] if d.cell_type == "code" and (c := _check_call(d.source))), None)
            if call is None:
                raise ValueError(f"{path.name}: no check call after exercise {exercise_id}")
            blocks = tuple((b + 1, e - 1) for b, e in zip(begins, ends))
            found.append(ExerciseCell(exercise_id, path, i, cell.source, blocks, *call))
    return found


# ---------------------------------------------------------------------------------------------
# mutants
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Mutant:
    operator: str
    description: str  # "<operator>: `<line of the solution>`: `<before>` -> `<after>`", stable across runs
    source: str  # the whole exercise cell, mutated


_DIM_KEYWORDS = {"dim", "axis", "dim0", "dim1"}
_DIM_ALTERNATIVES = {-1: (-2, 0), -2: (-1,), -3: (-1,), 0: (1, -1), 1: (0, -1), 2: (1, -1), 3: (2, -1)}
_MODULES = {"torch", "F", "nn", "math", "np", "statistics", "time", "copy", "data", "addition"}
_SWAPPED = (ast.MatMult, ast.Sub, ast.Div, ast.Pow, ast.FloorDiv, ast.Mod)


def _int_value(node: ast.AST) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
            and type(node.operand.value) is int:
        return -node.operand.value
    return None


def _int_node(value: int) -> ast.AST:
    return ast.UnaryOp(ast.USub(), ast.Constant(-value)) if value < 0 else ast.Constant(value)


def _edits(node: ast.AST, parent: ast.AST | None) -> Iterator[tuple[str, object]]:
    """(operator, edit) pairs for one node; an edit is a function node -> replacement (or None to delete)."""
    if isinstance(node, ast.keyword):
        value = _int_value(node.value)
        if node.arg in _DIM_KEYWORDS and value is not None:
            for alt in _DIM_ALTERNATIVES.get(value, ()):
                yield "dim", ("keyword-value", _int_node(alt))
        if node.arg == "keepdim" and isinstance(node.value, ast.Constant) and node.value.value is True:
            yield "keepdim", ("drop-keyword", None)
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, bool):
            yield "constant", ("keyword-value", ast.Constant(not node.value.value))
        return
    if isinstance(node, ast.stmt):
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):  # a docstring
            yield "delete", ("replace", ast.Pass())
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            for k in range(len(node.decorator_list)):
                yield "delete", ("drop-decorator", k)
        return
    if isinstance(node, ast.BinOp) and isinstance(node.op, _SWAPPED):
        if ast.dump(node.left) != ast.dump(node.right):
            yield "swap", ("replace", ast.BinOp(node.right, node.op, node.left))
        if isinstance(node.op, ast.MatMult):
            for side in ("left", "right"):
                yield "transpose", ("transpose", side)
        return
    if isinstance(parent, ast.keyword) and parent.arg in _DIM_KEYWORDS:
        return  # dimensions are the dim operator's
    value = _int_value(node)
    if value is not None and not (isinstance(node, ast.Constant) and isinstance(parent, ast.UnaryOp)):
        for alt in (value + 1, value - 1):
            yield "off-by-one", ("replace", _int_node(alt))
        return
    if isinstance(node, ast.Constant):
        if type(node.value) is float:
            yield "constant", ("replace", ast.Constant(node.value * 2 if node.value else 1.0))
        elif node.value in ("-inf", "inf"):
            yield "constant", ("replace", ast.Constant("inf" if node.value == "-inf" else "-inf"))
        elif isinstance(node.value, bool):
            yield "constant", ("replace", ast.Constant(not node.value))
        return
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute):
            receiver = func.value
            on_module = isinstance(receiver, ast.Name) and receiver.id in _MODULES
            on_self = isinstance(receiver, ast.Name) and receiver.id == "self" or (
                isinstance(receiver, ast.Attribute) and isinstance(receiver.value, ast.Name)
                and receiver.value.id == "self")
            if on_module or on_self:
                if node.args and not isinstance(node.args[0], ast.Starred):
                    yield "call", ("replace", node.args[0])
            else:
                yield "call", ("replace", receiver)


class _Mutator(ast.NodeTransformer):
    """Applies one edit to the node with a given index (in :func:`_targets` order)."""

    def __init__(self, target: ast.AST, edit: tuple):
        self.target, self.edit = target, edit

    def generic_visit(self, node):
        super().generic_visit(node)
        return node

    def visit(self, node):
        node = self.generic_visit(node)
        if node is not self.target:
            return node
        kind, arg = self.edit
        if kind == "replace":
            return ast.copy_location(arg, node) if isinstance(arg, ast.AST) else node
        if kind == "keyword-value":
            node.value = arg
            return node
        if kind == "drop-keyword":
            return None
        if kind == "drop-decorator":
            del node.decorator_list[arg]
            return node
        if kind == "transpose":
            operand = getattr(node, arg)
            setattr(node, arg, ast.Call(ast.Attribute(operand, "transpose", ast.Load()),
                                        [_int_node(-2), _int_node(-1)], []))
            return node
        raise ValueError(kind)


def _targets(tree: ast.AST, blocks: tuple[tuple[int, int], ...]) -> list[tuple[ast.AST, ast.AST | None]]:
    """(node, parent) pairs inside the solution blocks, in a fixed order."""
    out = []

    def walk(node, parent):
        line = getattr(node, "lineno", None)
        end = getattr(node, "end_lineno", line)
        if line is not None and any(first <= line and end <= last for first, last in blocks):
            out.append((node, parent))
        for child in ast.iter_child_nodes(node):
            walk(child, node)

    walk(tree, None)
    return out


def _describe(operator: str, lines: list[str], node: ast.AST, before: str, after: str) -> str:
    line = lines[node.lineno - 1].strip() if hasattr(node, "lineno") else ""
    return f"{operator}: `{line}`: `{before}` -> `{after}`"


def mutants(exercise: ExerciseCell) -> list[Mutant]:
    """Every mutant of the exercise's solution, without duplicates (two edits giving the same code)."""
    source = _python(exercise.source)
    tree = ast.parse(source)
    original = ast.unparse(tree)
    lines = source.splitlines()
    found: dict[str, Mutant] = {}
    seen: dict[str, int] = {}
    for index, (node, parent) in enumerate(_targets(tree, exercise.solution_lines)):
        for operator, edit in _edits(node, parent):
            copied = copy.deepcopy(tree)
            target = _targets(copied, exercise.solution_lines)[index][0]
            kind, arg = edit
            if isinstance(node, ast.keyword):
                before = f"{node.arg}={ast.unparse(node.value)}"
                after = "(dropped)" if kind == "drop-keyword" else f"{node.arg}={ast.unparse(arg)}"
            elif kind == "drop-decorator":
                before, after = "@" + ast.unparse(node.decorator_list[arg]), "(decorator removed)"
            elif kind == "transpose":
                before = ast.unparse(getattr(node, arg))
                after = f"{before}.transpose(-2, -1)"
            else:
                before = ast.unparse(node).splitlines()[0]
                after = ast.unparse(arg)
            code = ast.unparse(ast.fix_missing_locations(_Mutator(target, edit).visit(copied)))
            if code == original or code in found:
                continue
            description = _describe(operator, lines, node, before, after)
            seen[description] = seen.get(description, 0) + 1
            if seen[description] > 1:  # the same edit of the same text elsewhere on the line
                description += f" (#{seen[description]})"
            found[code] = Mutant(operator, description, code)
    return list(found.values())


# ---------------------------------------------------------------------------------------------
# the notebook's namespace at the exercise, and the worker that runs the checks
# ---------------------------------------------------------------------------------------------


def _free_names(tree: ast.AST) -> set[str]:
    loads = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    stores = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del))}
    defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    params = {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments)
              for a in (*n.posonlyargs, *n.args, *n.kwonlyargs, n.vararg, n.kwarg) if a is not None}
    return loads - stores - defined - params - set(dir(builtins))


def notebook_namespace(exercise: ExerciseCell) -> dict:
    """What the notebook's kernel holds when the exercise cell runs, as far as the cell needs it: the imports of
    the cells before it, the earlier exercises (their solutions), the literal globals, and - traced back through
    the assignments that define them - the other variables the cell reads."""
    nb = nbformat.read(exercise.notebook, as_version=4)
    space: dict = {"__name__": "__main__"}
    assignments: list[ast.stmt] = []

    def defines(node: ast.stmt) -> set[str]:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            return {node.name}
        return {n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)}

    def run(tree: ast.AST, where: str) -> None:
        try:
            exec(compile(tree, where, "exec"), space)
        except Exception:  # a variable the tool cannot rebuild: a mutant that needs it will say so
            pass

    def resolve(name: str, depth: int = 0) -> None:
        if name in space or depth > 6:
            return
        node = next((a for a in reversed(assignments) if name in defines(a)), None)
        if node is None:
            return
        for free in _free_names(node):
            resolve(free, depth + 1)
        run(ast.Module([node], []), "<setup>")

    for cell in nb.cells[: exercise.index + 1]:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(_python(cell.source))
        except SyntaxError:
            continue
        if EXERCISE_TAG in cell.metadata.get("tags", []):  # an earlier exercise (its solution), or this one's needs
            for name in sorted(_free_names(tree)):
                resolve(name)
            if cell is not nb.cells[exercise.index]:
                run(tree, f"<{exercise.notebook.name} exercise>")
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                run(ast.Module([node], []), "<import>")
            elif isinstance(node, (ast.Assign, ast.FunctionDef, ast.ClassDef)):
                assignments.append(node)
    return space


def _worker(conn, exercise: ExerciseCell, time_limit: float) -> None:  # pragma: no cover - runs in a subprocess
    """Build the namespace once; then for each mutant source received, run the check and send its outcome."""
    import linecache
    import warnings

    import torch

    warnings.simplefilter("ignore")  # a mutant's warnings (zero-size layers, ...) are not the tool's output
    torch.set_num_threads(1)
    sys.stdout = io.StringIO()
    import lecture_utils.checks as check
    from lecture_utils.checks import _core

    base = notebook_namespace(exercise)
    fn = getattr(check, exercise.check)
    # one call with the solution itself, under the default limit, before the first mutant: a check's first call pays
    # for torch's lazy set-up (seconds on a loaded machine), which is no mutant's doing
    space = dict(base)
    try:
        exec(compile(exercise.source, f"<solution {exercise.id}>", "exec"), space)
        fn(*[space[name] for name in exercise.args])
    except BaseException:  # a warm-up only: the solution's own run is reported like any mutant's
        pass
    _core.TIME_LIMIT = time_limit
    conn.send(("ready", ""))
    while True:
        job = conn.recv()
        if job is None:
            return
        number, source = job
        sys.stdout = io.StringIO()
        filename = f"<mutant {exercise.id} #{number}>"
        lines = source.splitlines(keepends=True)
        linecache.cache[filename] = (len(source), None, lines, filename)  # inspect.getsource works on it
        space = dict(base)
        try:
            exec(compile(source, filename, "exec"), space)
            args = [space[name] for name in exercise.args]
        except Exception as exc:
            conn.send(("invalid", f"{type(exc).__name__}: {exc}"))
            continue
        try:
            fn(*args)
        except AssertionError as failure:  # CheckFailed
            hint = getattr(failure, "hint", str(failure))
            conn.send(("generic" if _core.is_generic(hint) else "specific", hint))
            continue
        except BaseException as exc:  # anything else the check let through
            conn.send(("generic", f"the check itself raised {type(exc).__name__}: {exc}"))
            continue
        status = _core.RESULTS.get(exercise.id, {}).get("status")
        conn.send(("survived" if status == _core.PASSED else "generic", status or ""))


@dataclasses.dataclass
class Outcome:
    mutant: Mutant
    result: str  # specific / generic / survived / invalid
    message: str
    equivalent: str | None = None  # the reviewed reason, for a listed survivor


class _Runner:
    """One worker process for one exercise, restarted when a mutant outlives the hard time limit:
    three times ``time_limit`` (the worker's own alarm) plus ``grace`` seconds for a loaded machine."""

    def __init__(self, exercise: ExerciseCell, time_limit: float, grace: float = 30.0):
        self.exercise, self.time_limit, self.grace = exercise, time_limit, grace
        self.context = multiprocessing.get_context("spawn")
        self.process = None
        self._start()

    def _start(self) -> None:
        self.conn, child = self.context.Pipe()
        self.process = self.context.Process(target=_worker, args=(child, self.exercise, self.time_limit), daemon=True)
        main = sys.modules.get("__main__")
        bare = main is not None and not hasattr(main, "__spec__")
        if bare:
            # an in-process IPython shell puts a module without __spec__ in sys.modules["__main__"], and spawn
            # reads it; the worker needs nothing from __main__, so it starts from a bare one
            sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            self.process.start()
        finally:
            if bare:
                sys.modules["__main__"] = main
        if not self.conn.poll(300):
            raise RuntimeError(f"the worker for exercise {self.exercise.id} did not start")
        try:
            self.conn.recv()
        except EOFError:
            raise RuntimeError(f"the worker for exercise {self.exercise.id} died while starting") from None

    def run(self, number: int, mutant: Mutant) -> tuple[str, str]:
        self.conn.send((number, mutant.source))
        if self.conn.poll(self.time_limit * 3 + self.grace):
            try:
                return self.conn.recv()
            except EOFError:  # the worker died (e.g. a mutant that exhausts memory): start another
                self.process.join()
                self._start()
                return "generic", "the worker process died running this mutant"
        self.process.kill()
        self.process.join()
        self._start()
        return "generic", "the mutant hung (killed by the tool's hard time limit)"

    def close(self) -> None:
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()


def load_equivalents(path: Path = EQUIVALENT_FILE) -> dict[tuple[str, str], str]:
    """``{(exercise, description): reason}`` from the reviewed list of equivalent mutants."""
    if not path.is_file():
        return {}
    with path.open("rb") as f:
        entries = tomllib.load(f).get("mutant", [])
    return {(e["exercise"], e["mutant"]): e["reason"] for e in entries}


def sample(items: list, every: int) -> list:
    """Every ``every``-th item (a fixed, reproducible sample)."""
    return items[::every] if every > 1 else items


def run_exercise(exercise: ExerciseCell, *, every: int = 1, time_limit: float = 10.0,
                 equivalents: dict[tuple[str, str], str] | None = None) -> list[Outcome]:
    equivalents = load_equivalents() if equivalents is None else equivalents
    runner = _Runner(exercise, time_limit)
    outcomes = []
    try:
        for number, mutant in enumerate(sample(mutants(exercise), every)):
            result, message = runner.run(number, mutant)
            outcomes.append(Outcome(mutant, result, message, equivalents.get((exercise.id, mutant.description))))
    finally:
        runner.close()
    return outcomes


def table(results: dict[str, list[Outcome]]) -> str:
    """The per-exercise figures as a Markdown table, with a total row."""
    head = ("| exercise | mutants | killed, specific | killed, generic | survived | of which equivalent (listed) "
            "| unexplained survivors |\n|---|---:|---:|---:|---:|---:|---:|")
    rows, total = [head], [0] * 6
    for exercise_id in sorted(results, key=exercise_key):
        outs = [o for o in results[exercise_id] if o.result != "invalid"]
        survived = [o for o in outs if o.result == "survived"]
        figures = [len(outs), sum(o.result == "specific" for o in outs), sum(o.result == "generic" for o in outs),
                   len(survived), sum(o.equivalent is not None for o in survived),
                   sum(o.equivalent is None for o in survived)]
        total = [a + b for a, b in zip(total, figures)]
        rows.append(f"| {exercise_id} | " + " | ".join(map(str, figures)) + " |")
    rows.append("| **all** | " + " | ".join(f"**{v}**" for v in total) + " |")
    killed = total[1] + total[2]
    score = f"{100 * killed / max(1, total[0] - total[4]):.1f} %"
    specific = f"{100 * total[1] / max(1, killed):.1f} %"
    return "\n".join(rows) + (f"\n\nmutation score (killed / non-equivalent mutants): {score}; killed with a "
                              f"specific diagnosis: {specific} of the killed")


def main(root: str | Path = ".", exercise: str | None = None, every: int = 1, jobs: int = 2,
         time_limit: float = 10.0, show: str = "survivors") -> int:
    """Run the mutants and print the table; the survivors (or every outcome, ``show="all"``) are listed below it.
    Returns 1 when a survivor is neither killed nor listed as equivalent."""
    exercises = [e for e in find_exercises(root) if exercise is None or e.id == exercise]
    if not exercises:
        print(f"error: no exercise {exercise!r} in {Path(root) / 'solutions'}", file=sys.stderr)
        return 2
    equivalents = load_equivalents()
    start = time.perf_counter()
    os.environ.setdefault("LECTURE_UTILS_SMOKE", "1")
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {e.id: pool.submit(run_exercise, e, every=every, time_limit=time_limit, equivalents=equivalents)
                   for e in exercises}
        results = {k: f.result() for k, f in futures.items()}
    print(table(results))
    print(f"\n({time.perf_counter() - start:.0f} s, {jobs} worker process(es)"
          + (f", every {every}th mutant" if every > 1 else "") + ")")
    unexplained = 0
    for exercise_id in sorted(results, key=exercise_key):
        for o in results[exercise_id]:
            listed = o.result == "survived" and o.equivalent is None
            unexplained += listed
            if show == "all" or listed:
                print(f"  {exercise_id} {o.result:9} {o.mutant.description}" + (f"\n      {o.message[:200]}"
                                                                              if o.message and show == "all" else ""))
    return 1 if unexplained else 0
