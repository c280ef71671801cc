"""How long a ``litegate`` call takes before it does anything: this checkout's command against an
earlier revision's (its ``src`` from ``git archive``), the two run in turn, each command N times
in a fresh interpreter; median CPU (user + system of the child) and wall time.

    nice -n 10 python bench/cli_startup.py --before e44334b --runs 9

The client-side task command talks to a stand-in server started here (``/healthz`` and the task
route answer at once), so it times the CLI alone. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("numpy", "pydantic_settings", "httpx", "litegate.tasks", "litegate.documents", "litegate.nano",
         "litegate.engine")


class StandIn(BaseHTTPRequestHandler):
    def _send(self, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send({"status": "ok", "models": ["lite"]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send({"label": "a", "confidence": 0.9})

    def log_message(self, *args: object) -> None:
        pass


def _once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, stdin=subprocess.DEVNULL, timeout=120)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the revision to compare with (its src/)")
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cli-startup-"))
    archive = subprocess.run(["git", "archive", args.before, "src"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(work)], input=archive.stdout, check=True)
    trees = {"before": str(work / "src"), "after": str(ROOT / "src")}
    note = work / "note.txt"
    note.write_text("Invoice 42, total 12.50 EUR\n", encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    cli = [sys.executable, "-m", "litegate.cli"]
    commands = {
        "import litegate.cli": [sys.executable, "-c", "import litegate.cli"],
        "litegate --help": [*cli, "--help"],
        "litegate extractors --help": [*cli, "extractors", "--help"],
        "litegate classify --help": [*cli, "classify", "--help"],
        "litegate models": [*cli, "models"],
        "litegate read note.txt": [*cli, "read", str(note)],
        "litegate classify --url (a server)": [*cli, "classify", "--url", url, "--labels", "a,b", "hello"],
    }
    envs = {k: dict(os.environ, PYTHONPATH=src, LITEGATE_HOME=str(work / f"home-{k}"), OMP_NUM_THREADS="1")
            for k, src in trees.items()}
    probe = f"import json, sys, litegate.cli; print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    result: dict[str, object] = {"before": args.before, "runs": args.runs,
                                 "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                 "load_start": Path("/proc/loadavg").read_text().split()[:3],
                                 "import_loads": {k: json.loads(subprocess.run([sys.executable, "-c", probe], env=env,
                                                                               capture_output=True, check=True).stdout)
                                                  for k, env in envs.items()}}
    timings: dict[str, dict[str, dict[str, float]]] = {}
    for name, argv in commands.items():
        rows: dict[str, list[tuple[float, float]]] = {k: [] for k in trees}
        for _ in range(args.runs):
            for k in trees:  # in turn, so both see the same load
                rows[k].append(_once(argv, envs[k]))
        timings[name] = {k: {"cpu_s": round(statistics.median(c for _, c in v), 3),
                             "wall_s": round(statistics.median(w for w, _ in v), 3)} for k, v in rows.items()}
    server.shutdown()
    result["commands"] = timings
    result["load_end"] = Path("/proc/loadavg").read_text().split()[:3]
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
