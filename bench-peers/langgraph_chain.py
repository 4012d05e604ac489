"""LangGraph on the chain that benches/peers.rs runs: N trivial nodes, x + 1 each.

    pip install -r bench-peers/requirements.txt
    python3 bench-peers/langgraph_chain.py

Prints the time per run and per node for N = 10 and N = 100: the best of
several rounds, each the mean over many `invoke` calls, after a warm-up.
"""

import time
from typing import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    x: int


def build(n):
    graph = StateGraph(State)
    for i in range(n):
        graph.add_node(f"inc{i}", lambda s: {"x": s["x"] + 1})
    graph.add_edge(START, "inc0")
    for i in range(1, n):
        graph.add_edge(f"inc{i - 1}", f"inc{i}")
    graph.add_edge(f"inc{n - 1}", END)
    return graph.compile()


def measure(n, runs, rounds=5):
    graph = build(n)
    assert graph.invoke({"x": 0}) == {"x": n}
    for _ in range(runs // 10):
        graph.invoke({"x": 0})
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(runs):
            graph.invoke({"x": 0})
        best = min(best, (time.perf_counter() - start) / runs)
    return best


def main():
    # Fewer runs at N = 100 keep each round to a few seconds.
    for n, runs in [(10, 500), (100, 50)]:
        per_run = measure(n, runs)
        print(f"N={n:>3}: {per_run * 1e6:9.1f} µs per run, {per_run * 1e6 / n:6.1f} µs per node")


if __name__ == "__main__":
    main()
