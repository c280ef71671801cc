"""distill, review, examples: learning from corrections (litegate.learning.loop) from the shell.

They work on ``$LITEGATE_HOME`` and the ledger's database directly, so they run beside a
``litegate serve`` of the same home (a running distill there makes a second one fail cleanly).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from litegate.cli.common import err, fail, out, plain_table, settings
from litegate.errors import LitegateError

TaskOpt = Annotated[str | None, typer.Option(help="classify or extract, when NAME is both a classifier and an "
                                                     "extractor")]


def learner() -> Any:
    """A Learner over the home's stores and the ledger's database (no model is loaded)."""
    from litegate.learning.loop import Learner
    from litegate.ledger.calls import Ledger
    from litegate.nano.classifier import ClassifierStore
    from litegate.nano.encoders import EncoderRegistry
    from litegate.nano.extractor import ExtractorStore

    s = settings()
    encoders = EncoderRegistry(s.model_cache_dir())
    ledger = Ledger(s.ledger_database_url())
    return Learner(ledger.engine, ClassifierStore(s.home, encoders), ExtractorStore(s.home, encoders), ledger=ledger)


def kind_of(lr: Any, name: str, task: str | None) -> str:
    if task is not None:
        from litegate.learning.adapters import KIND_OF_TASK

        if task not in KIND_OF_TASK:
            fail("--task is classify or extract")
        return KIND_OF_TASK[task]
    found = [k for k, store in lr.stores.items() if store.versions(name)]
    if not found:
        fail(f"no classifier or extractor named {name!r}; train one with `litegate train {name} --learn ...`")
    if len(found) > 1:
        fail(f"{name!r} is both a classifier and an extractor: say --task classify or --task extract")
    return found[0]


app = typer.Typer()  # this module's commands; cli/__init__ adds them to the litegate command

@app.command()
def distill(name: Annotated[str, typer.Argument(help="a classifier or extractor trained with --learn")],
            task: TaskOpt = None,
            rollback: Annotated[bool, typer.Option("--rollback", help="make the version before the active one "
                                                                      "answer again")] = False,
            as_json: Annotated[bool, typer.Option("--json", help="print the whole result as JSON")] = False
            ) -> None:
    """Retrain from the original examples plus the collected labels; promote only if not worse."""
    lr = learner()
    kind = kind_of(lr, name, task)
    try:
        if rollback:
            result = lr.rollback(kind, name)
        else:
            with err.status(f"distilling {kind} {name}") as status:
                result = lr.distill(kind, name, progress=lambda msg: status.update(f"{name}: {msg}"))
    except LitegateError as e:
        fail(e.message)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    print(result["message"])
    if not rollback and not result.get("nothing_to_learn"):
        labels = result["labels"]
        print(f"  {result['metric']} on {result['held_back']} held-back labels ({result['folds']} folds, each "
              f"scored by a candidate trained without it): "
              f"candidate {result['candidate_score']:.3f}, v{result['from_version']} "
              f"{result['current_score']:.3f}; labels: {labels['human']} human, {labels['teacher']} teacher, "
              f"{labels['new']} new")
        if result["waiting_labels"]:
            print(f"  waiting for a second example: {', '.join(result['waiting_labels'])}")

@app.command()
def feedback(call_id: Annotated[str, typer.Argument(metavar="ID", help="the id of an earlier task call")],
             correct: Annotated[str | None, typer.Option(help='the right answer as JSON: {"label": ...} '
                                                                 'or {"data": {...}}; a bare word is a label')]
             = None,
             outcome: Annotated[str | None, typer.Option(help="success or failure")] = None) -> None:
    """Correct an earlier call's answer (and/or mark its outcome), as POST /v1/feedback does."""
    from litegate.ledger.calls import OUTCOMES

    if correct is None and outcome is None:
        fail("give --correct (the right answer), --outcome (success or failure), or both")
    if outcome is not None and outcome not in OUTCOMES:
        fail(f"--outcome is one of {', '.join(OUTCOMES)}")
    lr = learner()
    result: dict[str, Any] = {"id": call_id}
    try:
        if correct is not None:
            try:
                answer = json.loads(correct)
            except ValueError:
                answer = {"label": correct}  # `--correct billing`
            result.update(lr.correct(call_id, answer))
            outcome = outcome or ("success" if result["agreed"] else "failure")
        if not lr.ledger.set_outcome(call_id, outcome):
            fail(f"no call with id {call_id!r} in the ledger")
    except LitegateError as e:
        fail(e.message)
    result["outcome"] = outcome
    print(json.dumps(result, ensure_ascii=False))

@app.command()
def review(name: Annotated[str, typer.Argument(help="a classifier or extractor trained with --learn")],
           task: TaskOpt = None,
           limit: Annotated[int, typer.Option(help="at most this many calls")] = 20,
           below: Annotated[float, typer.Option(help="calls answered under this confidence")] = 0.5,
           as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """The review queue: calls to label, most informative first (label them with POST
    /v1/feedback or on the dashboard's review page)."""
    lr = learner()
    kind = kind_of(lr, name, task)
    try:
        queue = lr.review(kind, name, limit=limit, below=below)
    except LitegateError as e:
        fail(e.message)
    if as_json:
        print(json.dumps(queue, indent=2))
        return
    print(f"{queue['pending']} calls to review for {kind} {name} (v{queue['version']}), under {below} or sent "
          "to human review; most informative first:")
    for item in queue["data"]:
        answer = item["prediction"] or {}
        shown = answer.get("label") or answer.get("labels") or answer.get("data")
        print(f"  {item['id']}  {item['confidence']:.2f}  {json.dumps(shown, ensure_ascii=False)}  "
              f"{item['text'][:80]!r}")

@app.command()
def examples(name: Annotated[str, typer.Argument(help="a classifier or extractor trained with --learn")],
             task: TaskOpt = None,
             purge: Annotated[bool, typer.Option("--purge", help="delete every text kept for it")] = False
             ) -> None:
    """How many call texts are kept for learning (and how many are labeled); --purge deletes them."""
    lr = learner()
    kind = kind_of(lr, name, task)
    if purge:
        print(f"deleted {lr.purge(kind, name)} kept texts of {kind} {name}")
        return
    print(json.dumps({kind: name, **lr.counts(kind, name)}))


def learning_report(name: str, task: str | None, as_json: bool) -> None:
    """`litegate report --learning NAME`: the learning curve."""
    lr = learner()
    kind = kind_of(lr, name, task)
    try:
        curve = lr.curve(kind, name)
    except LitegateError as e:
        fail(e.message)
    if as_json:
        print(json.dumps(curve, indent=2))
        return

    print(f"{kind} {name}: v{curve['active_version']} active; {curve['calls']} calls kept, {curve['human_labels']} "
          f"human and {curve['teacher_labels']} teacher labels, {curve['new_labels']} not yet trained on")
    header = ("version", "trained", "examples", "held-back score", "previous", "active")
    body = [(f"v{v['version']}", v["trained_at"], str(v["examples"]),
             f"{v['candidate_score']:.3f} ({v['metric']}, {v['held_back']})" if v["candidate_score"] is not None
             else "-", f"{v['previous_score']:.3f}" if v["previous_score"] is not None else "-",
             "*" if v["active"] else "") for v in curve["versions"]]
    out.print(plain_table(header, body), highlight=False, soft_wrap=True)
    if curve["days"]:
        header = ("day", "calls", f"under {curve['below']}", "escalated", "reviewed", "corrected")
        body = [(d["day"], str(d["calls"]), f"{d['unsure_share']:.1%}", f"{d['escalated_share']:.1%}",
                 f"{d['reviewed_share']:.1%}", str(d["corrected"])) for d in curve["days"]]
        print()
        out.print(plain_table(header, body), highlight=False, soft_wrap=True)
