#!/usr/bin/env python3
"""Scenario runner of scripts/chaos.sh (see `scripts/chaos.sh --help`).

For each scenario, on a fresh database, queue prefix and Redis key prefix of the private
services that chaos.sh started: start the provider sink and `dispatchctl serve`, drive load
through the HTTP API while injecting the scenario's fault, let the system settle, then check
the conservation law: every notification answered 202 ends SENT, FAILED with a dead letter,
or CANCELED; none is missing or stuck; duplicates (more than one 200 from the sink for one
notification) are counted and must be explained by an attempt the engine never saw finish.

The quorum-* scenarios run against the private three-node cluster of
scripts/rabbitmq-cluster.sh (--cluster DIR) with QUEUE_TYPE=quorum and the cluster's
comma-separated RABBITMQ_URL instead of the single private node.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVICES_SH = HERE / "services.sh"
CLUSTER_SH = HERE.parent / "rabbitmq-cluster.sh"
SINK_PY = HERE / "sink.py"

SCENARIOS = ["rabbitmq", "redis", "postgres", "kill", "term", "flap", "purge", "queue-delete", "disk-loss",
             "drop-head", "quorum-leader", "quorum-node", "pg-failover", "redis-failover"]
CLUSTER_SCENARIOS = {"quorum-leader", "quorum-node"}
CHANNELS = ["SMS", "EMAIL", "PUSH"]
PRIORITIES = ["HIGH", "NORMAL", "LOW"]
SHUTDOWN_TIMEOUT_S = 10
# Seconds of load per scenario (the notification count is spread over it).
LOAD_SECONDS = {"rabbitmq": 25, "redis": 45, "postgres": 25, "kill": 25, "term": 25, "flap": 25,
                # drop-head: a burst, so that a backlog builds past the policy's max-length.
                "purge": 15, "queue-delete": 25, "disk-loss": 25, "drop-head": 6,
                "quorum-leader": 25, "quorum-node": 25, "pg-failover": 25, "redis-failover": 25}
# Where the broker loses what it holds: the worker is slowed so that a backlog is lost too.
BACKLOG_SCENARIOS = {"queue-delete", "disk-loss"}
# How long the lost-message rule lets a message stay lost (serve's REQUEUE_LOST_AFTER).
REQUEUE_LOST_AFTER_S = 5
# The drop-head scenario's policy: at most this many messages per work queue.
DROP_HEAD_MAX_LENGTH = 100
# redis-failover: the per-channel limit, below the load (~27/s per channel) so that it binds,
# the window over which a rate is measured, and the slack allowed over the documented bound.
REDIS_FAILOVER_RATE = 25
RATE_WINDOW_S = 2.0
RATE_SLACK = 1.15
# How long a cluster node stays down in the quorum-* scenarios.
NODE_DOWN_S = 10
REQUEST_DEADLINE_S = 120  # a load request is retried for this long before it counts as refused


def log(msg: str) -> None:
    print(f"chaos: [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip().strip("'\"")
    return out


class Services:
    def __init__(self, run: Path):
        self.run = run
        self.env = read_env_file(run / "services.env")
        self.pg_port = int(self.env["CHAOS_PG_PORT"])
        self.redis_port = int(self.env["CHAOS_REDIS_PORT"])
        self.amqp_port = int(self.env["CHAOS_AMQP_PORT"])
        self.cluster_dir: Path | None = None
        self.cluster_env: dict[str, str] = {}

    def sentinel_ports(self) -> list[int]:
        """master, replica, sentinel 1-3 (services.sh redis-sentinel-start adds them)."""
        self.env = read_env_file(self.run / "services.env")
        return [int(p) for p in self.env["CHAOS_SENTINEL_PORTS"].split()]

    def standby_port(self) -> int:
        """The private PostgreSQL's standby (services.sh pg-standby-start adds it to the env)."""
        self.env = read_env_file(self.run / "services.env")
        return int(self.env["CHAOS_PG_STANDBY_PORT"])

    def use_cluster(self, cluster_dir: Path) -> None:
        self.cluster_dir = cluster_dir
        self.cluster_env = read_env_file(cluster_dir / "cluster.env")

    @property
    def cluster_nodes(self) -> list[str]:
        return [self.cluster_env[f"CLUSTER_NODE_{i}"] for i in (1, 2, 3)]

    @property
    def cluster_ports(self) -> list[int]:
        return [int(self.cluster_env[f"CLUSTER_AMQP_PORT_{i}"]) for i in (1, 2, 3)]

    def cluster(self, *args: str, timeout: float = 180, quiet: bool = False) -> str:
        """scripts/rabbitmq-cluster.sh ACTION CLUSTER_DIR ARGS...; its output."""
        if self.cluster_dir is None:
            raise RuntimeError("no cluster (chaos.sh starts one for the quorum-* scenarios)")
        started = time.monotonic()
        r = subprocess.run(["bash", str(CLUSTER_SH), args[0], str(self.cluster_dir), *args[1:]],
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"rabbitmq-cluster.sh {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()[-400:]}")
        if not quiet:
            log(f"  cluster: {' '.join(args)} done in {time.monotonic() - started:.1f}s")
        return r.stdout

    def cluster_status(self) -> dict[int, str]:
        """Node index -> running | down (whether its Erlang VM runs)."""
        out = {}
        for line in self.cluster("status", quiet=True).splitlines():
            parts = line.split("\t")
            if len(parts) == 4:
                out[int(parts[0])] = parts[3]
        return out

    def cluster_whole(self) -> None:
        """Every node running and in the cluster: a scenario never starts on a degraded one."""
        for i, state in self.cluster_status().items():
            if state != "running":
                log(f"  cluster: node {i} is down; restarting it")
                self.cluster("restart", str(i))

    def leaders(self, prefix: str) -> dict[str, str]:
        """Queue name -> leader node, for the quorum queues whose name starts with prefix."""
        out = {}
        for line in self.cluster("leaders", prefix, quiet=True).splitlines():
            parts = line.split("\t")
            if len(parts) >= 3:
                out[parts[0]] = parts[2]
        return out

    def connections(self, prefix: str) -> list[tuple[str, str]]:
        """(client connection name, node) for the names that mention prefix."""
        out = []
        for line in self.cluster("connections", quiet=True).splitlines():
            name, _, node = line.partition("\t")
            if prefix in name:
                out.append((name, node))
        return sorted(out)

    def action(self, *args: str, timeout: float = 120) -> None:
        started = time.monotonic()
        subprocess.run(["bash", str(SERVICES_SH), str(self.run), *args], check=True, timeout=timeout,
                       stdout=subprocess.DEVNULL)
        log(f"  services: {' '.join(args)} done in {time.monotonic() - started:.1f}s")

    def rabbitmqctl(self, *args: str, timeout: float = 60) -> str:
        """A rabbitmqctl command against the private node; its standard output."""
        r = subprocess.run(["bash", str(SERVICES_SH), str(self.run), "rabbitmqctl", "-q", *args],
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {r.stderr.strip() or r.returncode}")
        return r.stdout

    def psql(self, db: str, sql: str, timeout: float = 30) -> list[list[str]]:
        r = subprocess.run(
            ["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "postgres", "-d", db,
             "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, timeout=timeout, env={**os.environ, "PGCONNECT_TIMEOUT": "3"})
        if r.returncode != 0:
            raise RuntimeError(r.stderr.strip() or f"psql exited {r.returncode}")
        return [line.split("\t") for line in r.stdout.splitlines() if line]


# ---- processes ----------------------------------------------------------------------------

class Proc:
    """A child process with a pid file (so chaos.sh's trap can end it if this runner dies)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logpath: Path, pids: Path, cwd: str):
        self.name, self.argv, self.env, self.logpath, self.cwd = name, argv, env, logpath, cwd
        self.pidfile = pids / f"{name}.pid"
        self.p: subprocess.Popen | None = None
        self.expected_exit = False
        self.unexpected_exits: list[int] = []

    def start(self) -> None:
        logf = open(self.logpath, "ab")
        self.p = subprocess.Popen(self.argv, env=self.env, stdout=logf, stderr=subprocess.STDOUT,
                                  cwd=self.cwd, start_new_session=True)
        logf.close()
        self.pidfile.write_text(str(self.p.pid))
        self.expected_exit = False

    def alive(self) -> bool:
        return self.p is not None and self.p.poll() is None

    def check(self) -> None:
        """Notes an exit that no one asked for (a crash)."""
        if self.p is not None and self.p.poll() is not None and not self.expected_exit:
            self.unexpected_exits.append(self.p.returncode)
            self.expected_exit = True

    def signal(self, sig: int) -> None:
        self.expected_exit = True
        if self.alive():
            self.p.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.pidfile.unlink(missing_ok=True)
        return rc

    def stop(self, grace: float) -> int | None:
        if self.p is None:
            return None
        if self.alive():
            self.signal(signal.SIGTERM)
            rc = self.wait(grace)
            if rc is not None:
                return rc
            self.p.kill()
        self.expected_exit = True
        rc = self.wait(10)
        self.pidfile.unlink(missing_ok=True)
        return rc


def http_get_status(port: int, path: str, timeout: float = 2) -> int:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        status = c.getresponse().status
        c.close()
        return status
    except OSError:
        return 0


def wait_ready(port: int, proc: Proc, within: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if http_get_status(port, "/readyz") == 200:
            return time.monotonic() - started
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.p.returncode} during start-up; see {proc.logpath}")
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} not ready within {within}s; see {proc.logpath}")


# ---- load -----------------------------------------------------------------------------------

@dataclass
class Item:
    key: str
    channel: str
    priority: str
    recipient: str
    content: str
    kind: str  # ok | reject | flaky
    max_retries: int | None = None
    schedule_s: float = 0      # scheduledAt this many seconds after the first try
    cancel: bool = False       # canceled right after its 202
    scheduled_at: str | None = None

    def body(self) -> dict:
        b = {"idempotencyKey": self.key, "channel": self.channel, "priority": self.priority,
             "recipient": self.recipient, "content": self.content}
        if self.max_retries:
            b["maxRetries"] = self.max_retries
        if self.schedule_s:
            if self.scheduled_at is None:  # fixed at the first try: retries send the same body
                at = datetime.now(timezone.utc) + timedelta(seconds=self.schedule_s)
                self.scheduled_at = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            b["scheduledAt"] = self.scheduled_at
        return b


@dataclass
class LoadResult:
    ids: dict[str, str] = field(default_factory=dict)       # key -> id answered 202
    id_conflicts: list[str] = field(default_factory=list)   # one key, two ids
    refused: int = 0                                         # items never answered 202
    rejected: list[str] = field(default_factory=list)        # 4xx answers (harness or API bug)
    requests: Counter = field(default_factory=Counter)       # single / batch / cancel
    errors: Counter = field(default_factory=Counter)         # failed tries by kind
    cancels: dict[str, int] = field(default_factory=dict)    # id -> final cancel answer
    accepted_at: list[float] = field(default_factory=list)   # monotonic time of each 202
    unavailable_without_retry_after: int = 0                 # 503s that did not say when to retry
    lock: threading.Lock = field(default_factory=threading.Lock)


def plan(n: int, scenario: str, seed: int) -> list[list[Item]]:
    rng = random.Random(f"{seed}-{scenario}")
    items = []
    for i in range(n):
        r = rng.random()
        kind = "reject" if r < 0.10 else "flaky" if r < 0.20 else "ok"
        ch = rng.choice(CHANNELS)
        recipient = {"reject": f"reject-{i}", "flaky": f"flaky2-{i}", "ok": f"user-{i}"}[kind]
        recipient += {"SMS": "-+905550000000", "EMAIL": "@example.com", "PUSH": "-device-token"}[ch]
        content = f"chaos {scenario} #{i}: " + "x" * rng.randint(5, 100)
        # In flap mode every transient-only recipient gets a budget of 10 attempts (the sink
        # injects at most 6 faults per notification, flaky2 adds 2).
        mr = 10 if scenario == "flap" and kind != "reject" else None
        items.append(Item(f"chaos-{scenario}-{seed}-{i}", ch, rng.choice(PRIORITIES), recipient,
                          content, kind, mr))
    requests, i = [], 0
    while i < n:
        size = 1 if rng.random() < 0.94 else rng.randint(10, 40)
        if size == 1:
            r = rng.random()
            if r < 0.03:
                # Scheduled a little later, then canceled: the cancel must win.
                items[i].schedule_s, items[i].cancel = 5, True
            elif r < 0.05:
                # Scheduled: the scheduler scan, not the API, publishes it.
                items[i].schedule_s = 3
        requests.append(items[i:i + size])
        i += size
    return requests


class Loader:
    """Sends the planned requests at a steady rate from a few threads, retrying each request
    (same idempotency keys) until it is answered 202 or REQUEST_DEADLINE_S passes."""

    def __init__(self, port: int, requests: list[list[Item]], seconds: float, seed: int, threads: int = 6):
        self.port, self.requests, self.seconds, self.threads = port, requests, seconds, threads
        self.result = LoadResult()
        self.rng = random.Random(seed)
        self.total = sum(len(r) for r in requests)
        self.done = threading.Event()

    def run(self) -> None:
        t0 = time.monotonic()
        schedule, sent = [], 0
        for req in self.requests:
            schedule.append((t0 + self.seconds * sent / self.total, req))
            sent += len(req)
        queue_lock = threading.Lock()
        it = iter(enumerate(schedule))

        def worker():
            conn = None
            while True:
                with queue_lock:
                    nxt = next(it, None)
                if nxt is None:
                    break
                idx, (at, req) = nxt
                delay = at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                conn = self.send(conn, req, cancel=req[0].cancel)
            if conn:
                conn.close()

        ts = [threading.Thread(target=worker, daemon=True) for _ in range(self.threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.done.set()

    def call(self, conn, method: str, path: str, body: dict | None):
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            if resp.status == 503 and resp.getheader("Retry-After") is None:
                with self.result.lock:
                    self.result.unavailable_without_retry_after += 1
            return conn, resp.status, raw
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            kind = type(e).__name__
            return None, None, kind

    def retrying(self, conn, method: str, path: str, body: dict | None, ok: tuple[int, ...]):
        deadline = time.monotonic() + REQUEST_DEADLINE_S
        pause = 0.2
        while True:
            conn, status, raw = self.call(conn, method, path, body)
            if status in ok:
                return conn, status, raw
            retryable = status is None or status >= 500 or status in (408, 429)
            with self.result.lock:
                self.result.errors[f"{method} {'conn:' + raw if status is None else status}"] += 1
            if not retryable or time.monotonic() > deadline:
                return conn, status, raw
            time.sleep(pause)
            pause = min(pause * 2, 2.0)

    def send(self, conn, req: list[Item], cancel: bool):
        r = self.result
        if len(req) == 1:
            conn, status, raw = self.retrying(conn, "POST", "/v1/notifications", req[0].body(), (202,))
            with r.lock:
                r.requests["single"] += 1
            answered = [json.loads(raw)] if status == 202 else None
        else:
            conn, status, raw = self.retrying(conn, "POST", "/v1/notifications/batch",
                                              {"notifications": [i.body() for i in req]}, (202,))
            with r.lock:
                r.requests["batch"] += 1
            answered = json.loads(raw)["notifications"] if status == 202 else None
            if answered is not None and len(answered) != len(req):
                with r.lock:
                    r.rejected.append(f"batch answer with {len(answered)} of {len(req)} items")
                answered = None
        if answered is None:
            with r.lock:
                if status is not None and status < 500 and status not in (408, 429):
                    r.rejected.append(f"{status}: {raw[:200]!r}")
                r.refused += len(req)
            return conn
        with r.lock:
            r.accepted_at.append(time.monotonic())
            for item, n in zip(req, answered):
                old = r.ids.get(item.key)
                if old is not None and old != n["id"]:
                    r.id_conflicts.append(item.key)
                r.ids[item.key] = n["id"]
        if cancel:
            nid = answered[0]["id"]
            conn, status, _ = self.retrying(conn, "POST", f"/v1/notifications/{nid}/cancel", None, (200, 409))
            with r.lock:
                r.requests["cancel"] += 1
                r.cancels[nid] = status or 0
        return conn


def short(conns: list[tuple[str, str]]) -> str:
    """dispatchctl-worker@rq1, ... : the role part of each connection name and its node."""
    return ", ".join(f"{name.split(' ')[0]}@{node.split('@')[0]}" for name, node in conns) or "none"


# ---- broker ---------------------------------------------------------------------------------

def work_queues(prefix: str, channel: str, queue_type: str) -> list[str]:
    """Names of one channel's work queues: one classic priority queue, or one quorum queue
    per priority (quorum queues have no message priorities)."""
    if queue_type == "quorum":
        return [f"{prefix}{channel.lower()}.{p.lower()}" for p in PRIORITIES]
    return [f"{prefix}{channel.lower()}"]


def read_queues(amqp_ports: list[int], prefix: str,
                queue_type: str = "classic") -> tuple[dict[str, list[tuple[str, str]]], dict[str, int]]:
    """Dead letters per channel as (notificationId, reason), read without consuming them (got
    unacked, requeued when the connection closes); and the depth of the work queues. The
    first of amqp_ports that answers is used (any node of a cluster sees every queue)."""
    import pika  # installed into target/chaos-venv by chaos.sh

    params = [pika.ConnectionParameters(host="127.0.0.1", port=port,
                                        credentials=pika.PlainCredentials("guest", "guest"),
                                        connection_attempts=3, retry_delay=1)
              for port in amqp_ports]
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    letters: dict[str, list[tuple[str, str]]] = {}
    depth: dict[str, int] = {}
    for c in CHANNELS:
        q = f"{prefix}dlq.{c.lower()}"
        got = []
        while True:
            method, props, body = ch.basic_get(q, auto_ack=False)
            if method is None:
                break
            try:
                nid = json.loads(body).get("notificationId", "")
            except ValueError:
                nid = ""
            headers = props.headers or {}
            reason = headers.get("x-dispatch-reason", "")
            if isinstance(reason, bytes):
                reason = reason.decode()
            if not reason and headers.get("x-death"):
                # A work message the broker itself dead-lettered (max-length, delivery limit).
                cause = headers["x-death"][0].get("reason", b"")
                reason = "broker:" + (cause.decode() if isinstance(cause, bytes) else str(cause))
            got.append((nid, reason))
        letters[c] = got
        for q in work_queues(prefix, c, queue_type):
            depth[q[len(prefix):]] = ch.queue_declare(q, passive=True).method.message_count
    conn.close()
    return letters, depth


# ---- one scenario ---------------------------------------------------------------------------

@dataclass
class Outcome:
    line: str
    passed: bool
    report: dict


class Scenario:
    def __init__(self, idx: int, name: str, args, svc: Services, run: Path, binary: str):
        self.idx, self.name, self.args, self.svc, self.binary = idx, name, args, svc, binary
        self.dir = run / "scenarios" / f"{idx}-{name}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pids = run / "pids"
        self.pids.mkdir(exist_ok=True)
        self.db = f"chaos_{idx}_{name.replace('-', '_')}"
        self.prefix = f"c{idx}-{name}."
        self.api_port = free_port()
        self.sink_port = free_port()
        self.notes: list[str] = []
        self.failures: list[str] = []
        self.cwd = tempfile.mkdtemp(prefix="chaos-cwd-")  # no .env above it
        self.on_cluster = name in CLUSTER_SCENARIOS
        # The fault's target in the cluster, chosen once serve is connected (see pick_target).
        self.target: int | None = None
        # pg-failover: the two servers, and when the primary was stopped.
        self.primary_port = svc.pg_port
        self.standby_port = 0
        self.primary_stopped_at: float | None = None
        # redis-failover: the sentinels, and when the master was killed (monotonic, wall).
        self.sentinels: list[int] = []
        self.master_killed_at: tuple[float, float] | None = None

    def cluster_url(self, first: int = 1) -> str:
        """The cluster's RABBITMQ_URL with node `first` first (the client tries them in order);
        with --cluster-urls first, only that node's URL (a dry run with a binary that takes
        one URL)."""
        ports = self.svc.cluster_ports
        order = ports[first - 1:] + ports[:first - 1]
        if self.args.cluster_urls == "first":
            order = order[:1]
        return ",".join(f"amqp://guest:guest@127.0.0.1:{p}/%2f" for p in order)

    def serve_env(self, api_port: int | None = None, first_node: int = 1) -> dict[str, str]:
        s = self.svc
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABASE_DSN": f"postgres://postgres@127.0.0.1:{s.pg_port}/{self.db}",
            "RABBITMQ_URL": f"amqp://guest:guest@127.0.0.1:{s.amqp_port}/%2f",
            "REDIS_URL": f"redis://127.0.0.1:{s.redis_port}/0",
            "WEBHOOK_SITE_URL": f"http://127.0.0.1:{self.sink_port}/hook",
            "API_HOST": "127.0.0.1",
            "API_PORT": str(api_port or self.api_port),
            "QUEUE_PREFIX": self.prefix,
            "REDIS_KEY_PREFIX": f"chaos:{self.idx}-{self.name}:",
            "RETRY_BACKOFF_BASE": "100ms",
            "RETRY_BACKOFF_MAX": "2s",
            "RETRY_SCAN_INTERVAL": "500ms",
            "SCHEDULER_SCAN_INTERVAL": "500ms",
            "UNPUBLISHED_GRACE": "2s",
            "PROVIDER_TIMEOUT": "2s",
            "LEASE_TIMEOUT": "5s",
            "SHUTDOWN_TIMEOUT": f"{SHUTDOWN_TIMEOUT_S}s",
            "RATE_LIMIT_PER_SEC": "0",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "info",
            # Short, so that the scenarios where the broker loses messages settle soon; every
            # scenario runs with it (a false "lost" must never deliver anything twice).
            "REQUEUE_LOST_AFTER": f"{REQUEUE_LOST_AFTER_S}s",
        }
        if self.name in BACKLOG_SCENARIOS:
            # Slower than the load (8 in flight at 200 ms: ~40/s against ~80/s), so that the
            # fault takes a backlog with it, not only the messages in flight.
            env["WORKER_CONCURRENCY"] = "8"
        if self.name == "redis":
            # With RATE_LIMIT_PER_SEC=0 the limiter never calls Redis and the outage would
            # test nothing: a limit well above the load puts Redis on every delivery's path.
            env["RATE_LIMIT_PER_SEC"] = "1000"
        if self.on_cluster:
            env["RABBITMQ_URL"] = self.cluster_url(first_node)
            env["QUEUE_TYPE"] = self.args.cluster_queue_type
        if self.name == "redis-failover":
            sentinels = ",".join(f"127.0.0.1:{p}" for p in self.sentinels)
            env["REDIS_URL"] = f"redis+sentinel://{sentinels}/chaos/0"
            env["RATE_LIMIT_PER_SEC"] = str(REDIS_FAILOVER_RATE)
        if self.name == "pg-failover":
            # Both servers, the primary first; the engine finds the writable one.
            env["DATABASE_DSN"] = (f"postgres://postgres@127.0.0.1:{self.primary_port},127.0.0.1:{self.standby_port}"
                                   f"/{self.db}?target_session_attrs=read-write")
        return env

    # -- cluster --

    def predeclare(self) -> None:
        """Declares the scenario's queues through node 2, so that their leaders live there
        (RabbitMQ puts a new quorum queue's leader on the node of the declaring client) while
        serve proper connects to node 1: the quorum-leader fault then hits the queues'
        leader and not serve's connections, and quorum-node hits serve's connections and not
        the queues' leader. A short-lived serve does it; it also applies the migrations.
        --cluster-leader-node 1 declares through serve's own node instead."""
        port = free_port()
        p = Proc("predeclare", [self.binary, "serve"], self.serve_env(port, first_node=self.args.cluster_leader_node),
                 self.dir / "predeclare.log", self.pids, self.cwd)
        p.start()
        try:
            wait_ready(port, p)
        finally:
            p.stop(SHUTDOWN_TIMEOUT_S + 5)

    def pick_target(self, timeline: list[str]) -> None:
        """Chooses the node to fault: for quorum-leader the node leading most of the
        scenario's queues, for quorum-node the node serve's worker connection is on."""
        nodes = self.svc.cluster_nodes
        leaders = self.svc.leaders(self.prefix)
        # serve may be ready before its consumer connected, and the closed connections of
        # the pre-declaring serve may still be listed for a moment: wait for exactly one.
        deadline = time.monotonic() + 20
        while True:
            conns = self.svc.connections(self.prefix)
            worker = [node for name, node in conns if "worker" in name]
            if len(worker) == 1 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        lead_count = Counter(leaders.values())
        worker_node = worker[0] if worker else (Counter(n for _, n in conns).most_common(1) or [("?", 0)])[0][0]
        where = ", ".join(f"{n.split('@')[0]} leads {lead_count.get(n, 0)}" for n in nodes)
        timeline.append(f"before the fault: {len(leaders)} queues ({where}); connections {short(conns)}")
        if self.name == "quorum-leader":
            if not lead_count:
                raise RuntimeError(f"no queue of prefix {self.prefix} has a leader: {leaders}")
            target = lead_count.most_common(1)[0][0]
            if target == worker_node:
                self.notes.append("the killed leader node is also the worker's node (both faults at once)")
        else:
            if worker_node not in nodes:
                raise RuntimeError(f"no worker connection of prefix {self.prefix} found: {conns}")
            target = worker_node
            if lead_count.get(target):
                self.notes.append(f"the stopped node also leads {lead_count[target]} queues")
        self.target = nodes.index(target) + 1

    def cluster_after(self) -> None:
        """Where the leaders and serve's connections are once everything settled."""
        leaders = self.svc.leaders(self.prefix)
        lead_count = Counter(v.split("@")[0] for v in leaders.values())
        conns = self.svc.connections(self.prefix)
        self.notes.append(f"after: leaders {dict(lead_count)}; connections {short(conns)}")

    # -- faults --

    def own_work_queue_depths(self) -> dict[str, int]:
        """This scenario's work queues and their ready messages, as the broker lists them."""
        out = self.svc.rabbitmqctl("list_queues", "-p", "/", "name", "messages_ready", "--no-table-headers")
        depths = {}
        for line in out.splitlines():
            cols = line.split()
            if len(cols) == 2 and self.is_own_work_queue(cols[0]):
                depths[cols[0]] = int(cols[1])
        return depths

    def is_own_work_queue(self, name: str) -> bool:
        return name.startswith(self.prefix) and not name[len(self.prefix):].startswith("dlq.")

    def own_work_queues(self) -> list[str]:
        """This scenario's work queues as the broker lists them now."""
        return list(self.own_work_queue_depths())

    def fault(self, serve: Proc, loader: Loader, t0: float, timeline: list[str]) -> None:
        def at(seconds: float) -> None:
            delay = t0 + seconds - time.monotonic()
            if delay > 0:
                time.sleep(delay)

        def mark(what: str) -> None:
            timeline.append(f"t={time.monotonic() - t0:.1f}s {what}")
            log(f"  {self.name}: {what}")

        n = self.name
        if n == "rabbitmq":
            at(8)
            mark("rabbitmqctl stop_app")
            self.svc.action("rabbit-stop-app")
            down = time.monotonic()
            mark("RabbitMQ app stopped")
            time.sleep(max(0.0, 10 - (time.monotonic() - down)))
            mark("rabbitmqctl start_app")
            self.svc.action("rabbit-start-app")
            mark("RabbitMQ app running")
        elif n == "redis":
            at(6)
            mark("Redis SHUTDOWN NOSAVE")
            self.svc.action("redis-stop")
            time.sleep(30)
            mark("Redis start")
            self.svc.action("redis-start")
        elif n == "postgres":
            at(10)
            mark("pg_ctl restart -m fast")
            self.svc.action("pg-restart")
            mark("PostgreSQL back")
            # A restart of an idle-ish cluster takes well under a second; a second, longer
            # outage makes the API answer 5xx and the worker lose PostgreSQL mid-delivery.
            at(16)
            mark("pg_ctl stop -m fast (5 s outage)")
            self.svc.action("pg-stop")
            time.sleep(5)
            mark("pg_ctl start")
            self.svc.action("pg-start")
            mark("PostgreSQL back")
        elif n == "kill":
            at(10)
            # Mid-delivery: wait (briefly) until some notification is SENDING.
            deadline = time.monotonic() + 5
            sending = 0
            while time.monotonic() < deadline:
                try:
                    sending = int(self.svc.psql(self.db, "SELECT count(*) FROM notifications WHERE status='SENDING'")[0][0])
                except (RuntimeError, subprocess.TimeoutExpired):
                    sending = 0
                if sending:
                    break
            serve.signal(signal.SIGKILL)
            mark(f"SIGKILL serve (pid {serve.p.pid}; {sending} SENDING just before)")
            serve.wait(10)
            time.sleep(2)
            serve.start()
            ready = wait_ready(self.api_port, serve)
            mark(f"serve restarted (pid {serve.p.pid}), ready after {ready:.1f}s")
        elif n == "term":
            at(10)
            serve.signal(signal.SIGTERM)
            mark(f"SIGTERM serve (pid {serve.p.pid})")
            started = time.monotonic()
            rc = serve.wait(SHUTDOWN_TIMEOUT_S + 20)
            took = time.monotonic() - started
            mark(f"serve exited rc={rc} after {took:.1f}s (SHUTDOWN_TIMEOUT={SHUTDOWN_TIMEOUT_S}s)")
            self.notes.append(f"SIGTERM: exit code {rc} after {took:.1f}s")
            if rc is None:
                serve.p.kill()
                serve.wait(10)
                self.failures.append(f"serve did not exit within {SHUTDOWN_TIMEOUT_S + 20}s of SIGTERM")
            elif rc != 0:
                self.failures.append(f"serve exited {rc} on SIGTERM (expected 0)")
            if took > SHUTDOWN_TIMEOUT_S:
                self.failures.append(f"serve took {took:.1f}s to exit on SIGTERM (> SHUTDOWN_TIMEOUT {SHUTDOWN_TIMEOUT_S}s)")
            serve.start()
            ready = wait_ready(self.api_port, serve)
            mark(f"serve restarted (pid {serve.p.pid}), ready after {ready:.1f}s")
        elif n == "purge":
            # serve runs --api-only during the load: every message waits in its queue.
            loader.done.wait()
            mark("load done; waiting until every first message is confirmed")
            deadline = time.monotonic() + 60
            while int(self.svc.psql(self.db, "SELECT count(*) FROM notification_outbox WHERE published_at IS NULL AND claimed_at IS NULL")[0][0]) and time.monotonic() < deadline:
                time.sleep(0.5)
            queued = int(self.svc.psql(self.db, "SELECT count(*) FROM notifications WHERE status = 'QUEUED'")[0][0])
            depths = self.own_work_queue_depths()
            purged = sum(depths.values())
            for q in depths:
                self.svc.rabbitmqctl("purge_queue", "-p", "/", q)
            left = sum(self.own_work_queue_depths().values())
            if left:
                self.notes.append(f"purge: {left} messages in the work queues right after the purge")
            mark(f"purged the work queues: {purged} messages ({queued} notifications QUEUED)")
            self.notes.append(f"purge: {purged} messages purged while {queued} notifications were QUEUED")
            serve.signal(signal.SIGTERM)
            serve.wait(SHUTDOWN_TIMEOUT_S + 5)
            serve.argv = [self.binary, "serve"]
            serve.start()
            ready = wait_ready(self.api_port, serve)
            mark(f"serve with its worker and scanners started, ready after {ready:.1f}s")
        elif n == "queue-delete":
            at(8)
            depths = self.own_work_queue_depths()
            queues = list(depths)
            for q in queues:
                self.svc.rabbitmqctl("delete_queue", "-p", "/", q)
            mark(f"deleted {len(queues)} work queues with their {sum(depths.values())} ready messages")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(self.own_work_queues()) < len(queues):
                time.sleep(0.2)
            mark(f"{len(self.own_work_queues())} of {len(queues)} work queues declared again")
        elif n == "disk-loss":
            at(8)
            backlog = sum(self.own_work_queue_depths().values())
            mark(f"stop the RabbitMQ node ({backlog} messages ready in the work queues), "
                 "delete its data directory, start it")
            self.svc.action("rabbit-wipe-restart")
            mark("RabbitMQ node running again, empty")
        elif n == "drop-head":
            at(1)
            pattern = "^" + re.escape(self.prefix) + "(sms|email|push)(\\.(high|normal|low))?$"
            definition = json.dumps({"max-length": DROP_HEAD_MAX_LENGTH, "overflow": "drop-head"})
            self.svc.rabbitmqctl("set_policy", "-p", "/", "--apply-to", "queues", "--priority", "10",
                                 f"drop-head-{self.idx}", pattern, definition)
            mark(f"policy max-length={DROP_HEAD_MAX_LENGTH} overflow=drop-head on the work queues")
            loader.done.wait()
            at(LOAD_SECONDS[n] * self.args.time_scale + 2)
            self.svc.rabbitmqctl("clear_policy", "-p", "/", f"drop-head-{self.idx}")
            mark("policy cleared")
        elif n in CLUSTER_SCENARIOS:
            node = self.svc.cluster_nodes[self.target - 1]
            at(8)
            if n == "quorum-leader":
                mark(f"SIGKILL {node} (queue leader)")
                self.svc.cluster("kill", str(self.target))
            else:
                mark(f"rabbitmqctl stop {node} (the worker's node)")
                self.svc.cluster("stop-node", str(self.target))
            down = time.monotonic()
            mark(f"{node} down")
            time.sleep(max(0.0, NODE_DOWN_S - (time.monotonic() - down)))
            mark(f"restart {node}")
            self.svc.cluster("restart", str(self.target))
            mark(f"{node} running in the cluster again")
        elif n == "pg-failover":
            at(10)
            mark("pg_ctl stop -m fast on the primary (its standby has every commit it confirmed)")
            self.primary_stopped_at = time.monotonic()
            self.svc.action("pg-stop")
            mark("primary stopped")
            time.sleep(2)
            mark("pg_ctl promote on the standby")
            self.svc.action("pg-promote")
            # The checks read the new primary from now on.
            self.svc.pg_port = self.standby_port
            mark("standby promoted; the old primary stays down")
        elif n == "redis-failover":
            at(8)
            self.master_killed_at = (time.monotonic(), time.time())
            self.svc.action("redis-sentinel-kill-master")
            mark("SIGKILL the Redis master")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                r = subprocess.run(["redis-cli", "-p", str(self.sentinels[0]), "sentinel", "get-master-addr-by-name",
                                    "chaos"], capture_output=True, text=True, timeout=5)
                if r.stdout.split()[1:2] == [str(self.sentinel_master_ports[1])]:
                    mark("the sentinels promoted the replica")
                    break
                time.sleep(0.2)
            else:
                mark("the sentinels did not promote the replica within 30 s")
        # flap: the sink's mode is the fault; nothing to do here.

    # -- run --

    def run(self) -> Outcome:
        started = time.monotonic()
        log(f"scenario {self.name}: database {self.db}, queue prefix {self.prefix}")
        sink_log = self.dir / "deliveries.tsv"
        sink = Proc("sink", [sys.executable, str(SINK_PY), "--port", str(self.sink_port), "--log", str(sink_log),
                             "--mode", "flap" if self.name == "flap" else "normal",
                             # Slower answers where a process dies: more deliveries in flight.
                             "--latency-ms", "200" if self.name in BACKLOG_SCENARIOS else
                             {"kill": "100", "term": "100", "drop-head": "300"}.get(self.name, "30"),
                             "--seed", str(self.args.seed + self.idx)],
                    dict(os.environ), self.dir / "sink.log", self.pids, self.cwd)
        serve_argv = [self.binary, "serve"] + (["--api-only"] if self.name == "purge" else [])
        serve = Proc("serve", serve_argv, self.serve_env(), self.dir / "serve.log", self.pids, self.cwd)
        timeline: list[str] = []
        try:
            sink.start()
            for _ in range(50):
                if http_get_status(self.sink_port, "/") == 200:
                    break
                time.sleep(0.1)
            if self.on_cluster:
                self.svc.cluster_whole()
                self.predeclare()
            worker2 = None
            if self.name == "redis-failover":
                self.svc.action("redis-sentinel-start")
                ports = self.svc.sentinel_ports()
                self.sentinel_master_ports, self.sentinels = ports[:2], ports[2:]
                serve.env = self.serve_env()
                # A second process delivering, so that the limit being global is what is tested.
                worker2 = Proc("worker2", [self.binary, "worker", "--listen", "127.0.0.1:0"], self.serve_env(),
                               self.dir / "worker2.log", self.pids, self.cwd)
            if self.name == "pg-failover":
                self.svc.action("pg-standby-start")
                self.standby_port = self.svc.standby_port()
                serve.env = self.serve_env()
            serve.start()
            wait_ready(self.api_port, serve)
            if worker2:
                worker2.start()
            if self.on_cluster:
                self.pick_target(timeline)
            requests = plan(self.args.count, self.name, self.args.seed)
            self.requests_sent = requests
            loader = Loader(self.api_port, requests, LOAD_SECONDS[self.name] * self.args.time_scale,
                            self.args.seed + self.idx)
            t0 = time.monotonic()
            load_thread = threading.Thread(target=loader.run, daemon=True)
            load_thread.start()
            fault_error: list[str] = []

            def fault_runner():
                try:
                    self.fault(serve, loader, t0, timeline)
                except Exception as e:  # noqa: BLE001 - reported as a scenario failure
                    fault_error.append(f"fault injection failed: {e}")

            fault_thread = threading.Thread(target=fault_runner, daemon=True)
            fault_thread.start()
            while load_thread.is_alive() or fault_thread.is_alive():
                serve.check()
                time.sleep(0.2)
            self.failures += fault_error
            load_end = time.monotonic()
            timeline.append(f"t={load_end - t0:.1f}s load done ({len(loader.result.ids)} accepted)")
            log(f"  {self.name}: load done in {load_end - t0:.1f}s; {len(loader.result.ids)} accepted; settling")
            settled, settle_s = self.settle(serve, load_end)
            serve.check()
            self.t0, self.load_end = t0, load_end
            return self.check(loader, sink_log, settled, settle_s, timeline, serve, time.monotonic() - started)
        finally:
            rc = serve.stop(SHUTDOWN_TIMEOUT_S + 5)
            if rc not in (0, None, -signal.SIGKILL) and not serve.unexpected_exits:
                self.notes.append(f"final stop: serve exited {rc}")
            sink.stop(5)
            if worker2:
                worker2.stop(SHUTDOWN_TIMEOUT_S + 5)
                self.svc.action("redis-sentinel-stop")
            if self.name == "pg-failover":
                # The scenarios after this one find the private PostgreSQL as it was.
                self.svc.action("pg-failback")
                self.svc.pg_port = self.primary_port

    def check_rate(self, lr: LoadResult, kind_of: dict, sink_log: Path, f: list[str]) -> None:
        """redis-failover: per channel, the deliveries (attempts) per RATE_WINDOW_S stay within
        the limit while Redis is shared, and within 2 × the limit while the limiter falls back
        (two processes, each on its own; each starts after the slots it reserved in Redis,
        and each shared again after the slots it reserved alone)."""
        if self.master_killed_at is None:
            f.append("the Redis master was never killed")
            return
        killed, killed_wall = self.master_killed_at
        # When serve's and worker2's limiters were shared again (their logs, wall clock).
        back = []
        for name in ("serve.log", "worker2.log"):
            fell = False
            for line in (self.dir / name).read_text(errors="replace").splitlines():
                if not line.startswith("{"):
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                msg = rec.get("message") or rec.get("fields", {}).get("message", "")
                at = datetime.fromisoformat(rec.get("timestamp", "1970-01-01T00:00:00+00:00").replace("Z", "+00:00")).timestamp()
                if at < killed_wall:
                    continue
                if "rate limiting per process" in msg:
                    fell = True
                elif "rate limiting is shared again" in msg and fell:
                    back.append(at - killed_wall)
                    break
        if len(back) < 2:
            f.append(f"the limiters were not shared again after the fail-over ({len(back)} of 2 processes)")
        # A process shared again still sends the slots it reserved alone just before (the
        # shared limiter starts after them): at most WORKER_CONCURRENCY of them, so the
        # fall-back phase lasts that many slots longer.
        concurrency = int(self.serve_env().get("WORKER_CONCURRENCY", "192"))
        gap = (max(back) if back else 30.0) + concurrency / REDIS_FAILOVER_RATE
        self.notes.append(f"redis-failover: shared limiting again {', '.join(f'{b:.1f}s' for b in back)} after the "
                          f"master was killed")
        id_channel = {lr.ids[it.key]: it.channel for req in self.requests_sent for it in req if it.key in lr.ids}
        times = defaultdict(list)
        for line in sink_log.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) == 6 and parts[1] in id_channel:
                times[id_channel[parts[1]]].append(float(parts[0]))
        worst = {}
        for channel, ts in times.items():
            ts.sort()
            j = 0
            for i, t in enumerate(ts):
                while ts[j] < t - RATE_WINDOW_S:
                    j += 1
                rate = (i - j + 1) / RATE_WINDOW_S
                shared = not (killed - RATE_WINDOW_S <= t <= killed + gap + RATE_WINDOW_S)
                phase = "shared" if shared else "fallback"
                # While falling back each of the two processes limits on its own: 2 ×.
                bound = REDIS_FAILOVER_RATE * (1 if shared else 2) * RATE_SLACK + 1 / RATE_WINDOW_S
                worst[(channel, phase)] = max(worst.get((channel, phase), 0), rate)
                if rate > bound:
                    f.append(f"{channel}: {rate:.1f}/s over {RATE_WINDOW_S}s at t={t - self.t0:.1f}s "
                             f"({phase}; bound {bound:.1f}/s)")
                    break
        self.notes.append("redis-failover: highest rate per channel over "
                          f"{RATE_WINDOW_S}s (limit {REDIS_FAILOVER_RATE}/s): " +
                          ", ".join(f"{c} {p} {r:.1f}/s" for (c, p), r in sorted(worst.items())))

    def settle(self, serve: Proc, since: float) -> tuple[bool, float]:
        deadline = since + self.args.settle_timeout
        last = None
        while time.monotonic() < deadline:
            serve.check()
            try:
                row = self.svc.psql(self.db, "SELECT count(*) FILTER (WHERE status IN ('ACCEPTED','QUEUED','SENDING')), "
                                             "count(*) FILTER (WHERE status='FAILED' AND dead_lettered_at IS NULL) "
                                             "FROM notifications")[0]
                last = (int(row[0]), int(row[1]))
                if last == (0, 0):
                    # A letter the broker lost after confirming it is found by the lost rule
                    # only REQUEUE_LOST_AFTER later: settled once every FAILED row's letter is
                    # in its DLQ again, not when the rows merely look done.
                    unlettered = self.failed_without_letter()
                    if not unlettered:
                        return True, time.monotonic() - since
                    last = f"{len(unlettered)} FAILED rows whose letter is not in its DLQ"
            except Exception as e:  # noqa: BLE001 - a store not answering yet: ask again
                last = str(e)
            time.sleep(0.5)
        self.notes.append(f"not settled within {self.args.settle_timeout}s (open, undead-lettered FAILED, or letters missing) = {last}")
        return False, time.monotonic() - since

    def read_own_queues(self) -> tuple[dict[str, list[tuple[str, str]]], dict[str, int]]:
        if self.on_cluster:
            return read_queues(self.svc.cluster_ports, self.prefix, self.args.cluster_queue_type)
        return read_queues([self.svc.amqp_port], self.prefix)

    def failed_without_letter(self) -> list[str]:
        failed = {r[0] for r in self.svc.psql(self.db, "SELECT id FROM notifications WHERE status = 'FAILED'")}
        if not failed:
            return []
        letters, _ = self.read_own_queues()
        lettered = {nid for got in letters.values() for nid, _ in got}
        return sorted(failed - lettered)

    def check(self, loader: Loader, sink_log: Path, settled: bool, settle_s: float, timeline: list[str],
              serve: Proc, total_s: float) -> Outcome:
        lr = loader.result
        accepted = set(lr.ids.values())
        kind_of = {}
        for req in loader.requests:
            for item in req:
                if item.key in lr.ids:
                    kind_of[lr.ids[item.key]] = item.kind

        rows = {}
        for r in self.svc.psql(self.db, "SELECT id, status, recipient, attempt_count, max_retries, "
                                        "coalesce(failure_reason,''), (dead_lettered_at IS NOT NULL)::int FROM notifications"):
            rows[r[0]] = {"status": r[1], "recipient": r[2], "attempts": int(r[3]), "max": int(r[4]),
                          "reason": r[5], "dl": r[6] == "1"}
        attempts = defaultdict(dict)  # id -> attempt_number -> [(outcome, error)]
        lease_expired = 0
        for r in self.svc.psql(self.db, "SELECT notification_id, attempt_number, outcome, coalesce(error,'') "
                                        "FROM notification_attempts"):
            attempts[r[0]].setdefault(int(r[1]), []).append((r[2], r[3]))
            if r[3] == "lease expired":
                lease_expired += 1

        if self.on_cluster:
            self.cluster_after()
        letters, depth = self.read_own_queues()
        dlq_ids = Counter(nid for got in letters.values() for nid, _ in got)
        reasons = Counter(reason for got in letters.values() for _, reason in got)

        deliveries = defaultdict(list)  # id -> [(attempt, status)]
        outcomes = Counter()
        times = []
        for line in sink_log.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) == 6:
                deliveries[parts[1]].append((int(parts[2]), int(parts[4])))
                outcomes[parts[5]] += 1
                times.append(float(parts[0]))
        # The longest time the provider heard nothing while load ran (same monotonic clock).
        times = sorted(t for t in times if self.t0 <= t <= self.load_end) or [self.t0]
        gaps = [(b - a, a) for a, b in zip([self.t0] + times, times + [self.load_end])]
        silence, silence_at = max(gaps)

        status_of = {i: rows[i]["status"] for i in accepted if i in rows}
        counts = Counter(status_of.values())
        missing = sorted(accepted - rows.keys())
        stuck_all = [i for i, r in rows.items() if r["status"] in ("ACCEPTED", "QUEUED", "SENDING")]
        stuck = [i for i in stuck_all if i in accepted]
        failed = [i for i, s in status_of.items() if s == "FAILED"]
        dead_lettered = [i for i in failed if dlq_ids[i] > 0]
        failed_without_letter = [i for i in failed if dlq_ids[i] == 0]
        # A work message a max-length policy dropped into the DLQ (x-death maxlen) is not a
        # final failure: its notification was published again and ended on its own.
        strays = Counter(i for got in letters.values() for i, reason in got
                         if reason == "broker:maxlen" and rows.get(i, {}).get("status") != "FAILED")
        letters_for_non_failed = [i for i in dlq_ids if i and i not in strays and rows.get(i, {}).get("status") != "FAILED"]
        letters_unknown = [i for i in dlq_ids if not i]
        extra_letters = sum(c - 1 for c in dlq_ids.values() if c > 1)

        canceled_ok = {i for i, st in lr.cancels.items() if st == 200}
        not_sent_transient = [i for i, k in kind_of.items()
                              if k in ("ok", "flaky") and i not in canceled_ok and status_of.get(i) not in (None, "SENT")
                              and status_of.get(i) not in ("ACCEPTED", "QUEUED", "SENDING")]
        flaky_not_sent = [i for i in not_sent_transient if kind_of[i] == "flaky"]
        reject_not_failed = [i for i, k in kind_of.items()
                             if k == "reject" and i not in canceled_ok and status_of.get(i) in ("SENT",)]
        cancel_lost = [i for i in canceled_ok if status_of.get(i) != "CANCELED"]
        sent_without_200 = [i for i, s in status_of.items()
                            if s == "SENT" and not any(st == 200 for _, st in deliveries.get(i, []))]

        # Duplicates: more than one 200 for one notification. Explained when every 200 but
        # the last belongs to an attempt the engine did not record as a success (the worker
        # died or lost PostgreSQL before recording it, and the lease expired): at-least-once.
        duplicates, unexplained, dup_causes = [], [], Counter()
        for i, ds in deliveries.items():
            oks = sorted(a for a, st in ds if st == 200)
            if len(oks) < 2:
                continue
            duplicates.append(i)
            earlier = oks[:-1]
            explained = len(set(oks)) == len(oks)
            for a in earlier:
                recs = attempts.get(i, {}).get(a, [])
                if any(o == "SUCCESS" for o, _ in recs):
                    explained = False
                dup_causes[",".join(sorted({e or o for o, e in recs})) or "no attempt record"] += 1
            if not explained:
                unexplained.append(i)
        canceled_after_200 = [i for i in canceled_ok if any(st == 200 for _, st in deliveries.get(i, []))]

        panics = []
        errors = Counter()
        for line in (self.dir / "serve.log").read_text(errors="replace").splitlines():
            if "panicked" in line or "RUST_BACKTRACE" in line:
                panics.append(line.strip()[:300])
            elif line.startswith("{"):
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                level = rec.get("level", "")
                if level in ("ERROR", "WARN"):
                    msg = rec.get("message") or rec.get("fields", {}).get("message", "")
                    errors[f"{level} {msg}"] += 1

        f = self.failures
        if not settled:
            f.append("did not settle before the deadline")
        if lr.refused:
            f.append(f"{lr.refused} notifications never answered 202 (after {REQUEST_DEADLINE_S}s of retries)")
        if lr.rejected:
            f.append(f"API rejected load requests: {lr.rejected[:3]}")
        if lr.id_conflicts:
            f.append(f"idempotency broken: {len(lr.id_conflicts)} keys answered with two ids")
        if missing:
            f.append(f"missing (answered 202, no row): {missing[:5]}")
        if stuck_all:
            f.append(f"stuck in ACCEPTED/QUEUED/SENDING: {len(stuck_all)} ({len(stuck)} accepted) e.g. {stuck_all[:5]}")
        if failed_without_letter:
            f.append(f"FAILED without a dead letter: {len(failed_without_letter)} e.g. {failed_without_letter[:5]}")
        if letters_for_non_failed:
            f.append(f"dead letters for notifications not FAILED: {letters_for_non_failed[:5]}")
        if flaky_not_sent:
            f.append(f"transient-only (flaky2) not SENT: {len(flaky_not_sent)} e.g. "
                     f"{[(i, rows[i]['status'], rows[i]['reason']) for i in flaky_not_sent[:5]]}")
        if len(not_sent_transient) > len(flaky_not_sent):
            others = [i for i in not_sent_transient if kind_of[i] == "ok"]
            f.append(f"always-accepting recipients not SENT: {len(others)} e.g. "
                     f"{[(i, rows[i]['status'], rows[i]['reason']) for i in others[:5]]}")
        if reject_not_failed:
            f.append(f"rejected recipients SENT: {reject_not_failed[:5]}")
        if cancel_lost:
            f.append(f"cancel answered 200 but not CANCELED: {cancel_lost[:5]}")
        if sent_without_200:
            f.append(f"SENT without a 200 from the provider: {len(sent_without_200)} e.g. {sent_without_200[:5]}")
        if unexplained:
            f.append(f"unexplained duplicate deliveries: {len(unexplained)} e.g. {unexplained[:5]}")
        if panics:
            f.append(f"panic in serve log: {panics[0]}")
        if serve.unexpected_exits:
            f.append(f"serve exited unexpectedly: {serve.unexpected_exits}")
        if self.name == "pg-failover":
            server_errors = {k: v for k, v in lr.errors.items() if k.endswith(" 500")}
            if server_errors:
                f.append(f"the API answered 500 during the switch: {server_errors}")
            if lr.unavailable_without_retry_after:
                f.append(f"{lr.unavailable_without_retry_after} answers 503 without Retry-After")
            after = sorted(t for t in lr.accepted_at if self.primary_stopped_at and t > self.primary_stopped_at)
            if self.primary_stopped_at is None:
                f.append("the primary was never stopped")
            elif not after:
                f.append("no 202 after the primary stopped")
            else:
                self.notes.append(f"pg-failover: first 202 {after[0] - self.primary_stopped_at:.1f}s after the primary "
                                  f"stopped (2 s of it before the promote); 503 answers "
                                  f"{sum(v for k, v in lr.errors.items() if k.endswith(' 503'))}")
        if self.name == "redis-failover":
            self.check_rate(lr, kind_of, sink_log, f)
        if self.name == "term" and lease_expired:
            f.append(f"graceful shutdown abandoned {lease_expired} deliveries (recovered by lease expiry)")

        n = self.notes
        n.append("timeline: " + "; ".join(timeline))
        n.append(f"load: {dict(lr.requests)} requests; failed tries {dict(lr.errors) or 0}; "
                 f"cancel answers {dict(Counter(lr.cancels.values())) or '-'}")
        n.append(f"provider answers: {dict(outcomes)}; attempts recorded as 'lease expired': {lease_expired}; "
                 f"longest provider silence during load {silence:.1f}s (from t={silence_at - self.t0:.1f}s)")
        n.append(f"dead letters: {sum(dlq_ids.values())} ({dict(reasons)}); extra copies {extra_letters}; "
                 f"work queues left: {depth}")
        if strays:
            n.append(f"work messages the max-length policy dead-lettered (their notifications ended on their own): "
                     f"{sum(strays.values())}, statuses {dict(Counter(rows[i]['status'] for i in strays))}")
        lost_recovered = Counter()
        for line in (self.dir / "serve.log").read_text(errors="replace").splitlines():
            if "the broker lost them" in line:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                fields = rec.get("fields", rec)
                lost_recovered["letters" if "reclaimed" in fields else "messages"] += int(
                    fields.get("requeued", fields.get("reclaimed", 0)))
        if lost_recovered:
            n.append(f"published again by the lost-message rule: {dict(lost_recovered)}")
        if duplicates:
            n.append(f"duplicates: {len(duplicates)} notifications got >1 provider 200; unexplained {len(unexplained)}; "
                     f"earlier attempt recorded as {dict(dup_causes)}")
        if canceled_after_200:
            n.append(f"canceled after a provider 200 the engine never recorded: {len(canceled_after_200)}")
        if len(rows) > len(accepted):
            n.append(f"rows never answered 202 (request failed after commit): {len(rows) - len(accepted)}")
        if errors:
            top = ", ".join(f"{k} x{v}" for k, v in errors.most_common(6))
            n.append(f"serve warnings/errors: {top}")
        n.append(f"scenario wall time {total_s:.0f}s")

        passed = not f
        line = (f"scenario={self.name} accepted={len(accepted)} sent={counts['SENT']} failed={counts['FAILED']} "
                f"canceled={counts['CANCELED']} dead_lettered={len(dead_lettered)} missing={len(missing)} "
                f"stuck={len(stuck)} duplicates={len(duplicates)} settle_s={settle_s:.1f} "
                f"result={'PASS' if passed else 'FAIL'}")
        report = {"scenario": self.name, "line": line, "failures": f, "notes": n,
                  "accepted": len(accepted), "counts": dict(counts), "duplicates": duplicates,
                  "unexplained_duplicates": unexplained, "stuck": stuck_all, "missing": missing,
                  "failed_without_letter": failed_without_letter}
        (self.dir / "report.json").write_text(json.dumps(report, indent=2))
        return Outcome(line, passed, report)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True, type=Path)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--settle-timeout", type=float, default=180)
    ap.add_argument("--time-scale", type=float, default=1.0, help="stretch or shrink the load duration")
    ap.add_argument("--cluster", type=Path, help="directory of a running scripts/rabbitmq-cluster.sh cluster")
    ap.add_argument("--cluster-queue-type", choices=["quorum", "classic"], default="quorum",
                    help="QUEUE_TYPE of the quorum-* scenarios (classic: a dry run of the harness)")
    ap.add_argument("--cluster-leader-node", type=int, choices=[1, 2, 3], default=2,
                    help="node the quorum-* scenarios' queues are declared through (so led by); "
                         "1 puts the leaders on serve's own node, so both faults hit both")
    ap.add_argument("--cluster-urls", choices=["all", "first"], default="all",
                    help="RABBITMQ_URL of the quorum-* scenarios: every node, or only the first")
    ap.add_argument("scenarios", nargs="+", choices=SCENARIOS)
    args = ap.parse_args()

    def on_term(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    svc = Services(args.run)
    if args.cluster:
        svc.use_cluster(args.cluster)
    elif CLUSTER_SCENARIOS & set(args.scenarios):
        ap.error("the quorum-* scenarios need --cluster DIR")
    results = []
    summary = args.run / "results.txt"
    for idx, name in enumerate(args.scenarios, 1):
        sc = Scenario(idx, name, args, svc, args.run, args.bin)
        try:
            out = sc.run()
        except KeyboardInterrupt:
            log("interrupted")
            return 130
        except Exception as e:  # noqa: BLE001 - a harness error fails the scenario, the run goes on
            log(f"scenario {name}: harness error: {e!r}")
            out = Outcome(f"scenario={name} accepted=0 sent=0 failed=0 canceled=0 dead_lettered=0 missing=0 "
                          f"stuck=0 duplicates=0 settle_s=0.0 result=FAIL", False,
                          {"failures": [f"harness error: {e!r}"], "notes": sc.notes})
        for note in out.report.get("notes", []):
            print(f"  note: {note}", flush=True)
        for failure in out.report.get("failures", []):
            print(f"  FAIL: {failure}", flush=True)
        print(out.line, flush=True)
        with open(summary, "a") as fh:
            fh.write(out.line + "\n")
        results.append(out)
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
