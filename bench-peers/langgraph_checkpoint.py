"""LangGraph's SQLite checkpointer on a 10-node chain of small structs: the peer
for Stroma's SQLite-backed durable runs.

    pip install -r bench-peers/requirements.txt
    python3 bench-peers/langgraph_checkpoint.py [--synchronous {full,normal}]

The state holds one small struct, {"id": int, "name": str, "score": float}; each
of the 10 nodes step0..step9 returns it with id and score one higher. The graph
runs compiled without a checkpointer (the baseline) and with
SqliteSaver(sqlite3.connect(<file in a temp dir>)), once per durability mode
that the installed langgraph accepts ("async" is its default, then "sync" and
"exit"). Every checkpointed invoke uses a fresh thread_id, so each run starts a
new thread, as a fresh durable run does.

Prints, per mode, the time per run and per node (run / 10) in microseconds and
the checkpointing overhead per node ((checkpointed - baseline) / 10): the best
of several rounds, each the mean over many `invoke` calls, after a warm-up.
Also prints the rows written per run and the SQLite settings the checkpointer
ran with (PRAGMA journal_mode and synchronous on its connection).

SqliteSaver.setup() puts the database in WAL mode and leaves synchronous at
SQLite's compiled-in default, FULL in the usual builds: every commit waits for
the disk. After setup() the script sets PRAGMA synchronous on the checkpointer's
connection from --synchronous and checks with a PRAGMA query that it took:
`full` (the default, and what LangGraph gets unconfigured) or `normal`, so
LangGraph can be compared with a store that runs SQLite in WAL with
synchronous=NORMAL, whose commits don't wait for the disk (a power loss can
lose the last few; a crash of the process cannot).
"""

import argparse
import inspect
import itertools
import os
import sqlite3
import tempfile
import time
from importlib.metadata import version
from typing import TypedDict

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

N = 10


class Item(TypedDict):
    id: int
    name: str
    score: float


class State(TypedDict):
    item: Item


def step(state):
    item = state["item"]
    return {"item": {"id": item["id"] + 1, "name": item["name"], "score": item["score"] + 1.0}}


def build(checkpointer=None):
    graph = StateGraph(State)
    for i in range(N):
        graph.add_node(f"step{i}", step)
    graph.add_edge(START, "step0")
    for i in range(1, N):
        graph.add_edge(f"step{i - 1}", f"step{i}")
    graph.add_edge(f"step{N - 1}", END)
    return graph.compile(checkpointer=checkpointer)


INPUT = {"item": {"id": 0, "name": "widget", "score": 0.5}}
OUTPUT = {"item": {"id": N, "name": "widget", "score": 0.5 + N}}

threads = itertools.count()


def invoke(graph, durability):
    if durability is None:
        return graph.invoke(INPUT)
    config = {"configurable": {"thread_id": f"t{next(threads)}"}}
    if durability == "default":
        return graph.invoke(INPUT, config=config)
    return graph.invoke(INPUT, config=config, durability=durability)


def measure(graph, durability, runs, rounds=5):
    assert invoke(graph, durability) == OUTPUT
    for _ in range(runs // 10):
        invoke(graph, durability)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(runs):
            invoke(graph, durability)
        best = min(best, (time.perf_counter() - start) / runs)
    return best


def count_rows(conn):
    return tuple(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("checkpoints", "writes"))


SYNCHRONOUS = {"full": 2, "normal": 1}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--synchronous",
        choices=list(SYNCHRONOUS),
        default="full",
        help="PRAGMA synchronous on the checkpointer's connection, set after setup() (default: full)",
    )
    args = parser.parse_args()

    print(
        f"langgraph {version('langgraph')}, langgraph-checkpoint {version('langgraph-checkpoint')}, "
        f"langgraph-checkpoint-sqlite {version('langgraph-checkpoint-sqlite')}, "
        f"SQLite {sqlite3.sqlite_version}"
    )

    # The `durability` argument to invoke arrived in langgraph 0.6; before it,
    # only the default ran.
    modes = ["default"]
    if "durability" in inspect.signature(build().invoke).parameters:
        modes = ["async", "sync", "exit"]

    baseline = measure(build(), None, runs=1000)
    print(f"{N} nodes, one {{id, name, score}} struct in the state; best of 5 rounds")
    print(f"{'no checkpointer':>29}: {baseline * 1e6:8.1f} µs per run, {baseline * 1e6 / N:6.1f} µs per node")

    with tempfile.TemporaryDirectory() as tmp:
        pragmas = None
        for mode in modes:
            # A fresh database file per mode, so no mode runs against a table
            # the previous one filled.
            path = os.path.join(tmp, f"checkpoints-{mode}.sqlite")
            conn = sqlite3.connect(path, check_same_thread=False)
            try:
                saver = SqliteSaver(conn)
                saver.setup()
                conn.execute(f"PRAGMA synchronous={args.synchronous.upper()}")
                took = conn.execute("PRAGMA synchronous").fetchone()[0]
                if took != SYNCHRONOUS[args.synchronous]:
                    raise SystemExit(
                        f"PRAGMA synchronous={args.synchronous.upper()} did not take: synchronous is {took}"
                    )
                graph = build(saver)
                # One run to count the rows a run writes.
                assert invoke(graph, mode) == OUTPUT
                checkpoints, writes = count_rows(conn)
                per_run = measure(graph, mode, runs=300)
                if pragmas is None:
                    pragmas = {
                        p: conn.execute(f"PRAGMA {p}").fetchone()[0]
                        for p in ("journal_mode", "synchronous", "wal_autocheckpoint", "page_size")
                    }
            finally:
                conn.close()
            label = f"durability={mode!r}" + (" (default)" if mode == "async" else "")
            print(
                f"{label:>29}: {per_run * 1e6:8.1f} µs per run, {per_run * 1e6 / N:6.1f} µs per node, "
                f"overhead {(per_run - baseline) * 1e6 / N:6.1f} µs per node; "
                f"rows per run: {checkpoints} checkpoints, {writes} writes"
            )

    sync_names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    print(
        f"SQLite as the checkpointer ran it: journal_mode={pragmas['journal_mode']}, "
        f"synchronous={pragmas['synchronous']} ({sync_names.get(pragmas['synchronous'], '?')}, "
        f"--synchronous {args.synchronous}), "
        f"wal_autocheckpoint={pragmas['wal_autocheckpoint']}, page_size={pragmas['page_size']}; "
        f"one commit per put/put_writes"
    )


if __name__ == "__main__":
    main()
