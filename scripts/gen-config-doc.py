#!/usr/bin/env python3
"""Regenerates docs/CONFIGURATION.md from the SETTINGS table in src/config.rs.

A test fails when a setting in the code is missing from the document, so run this after
adding one: python3 scripts/gen-config-doc.py
"""
import pathlib
import re

root = pathlib.Path(__file__).resolve().parent.parent
src = (root / "src/config.rs").read_text()
start = src.index("pub const SETTINGS")
block = src[start : src.index("];", start)]
pattern = re.compile(
    r'(spec|secret)\(\s*"([A-Z_]+)",\s*(?:(Some\("([^"]*)"\)|None),\s*)?"([^"]*)",\s*"((?:[^"\\]|\\.)*)",?\s*\)'
)
flags = {"API_HOST": "`serve --host`", "API_PORT": "`serve --port`", "WORKER_CONCURRENCY": "`worker --concurrency`"}
rows = []
for m in pattern.finditer(block):
    kind, env, _, default, example, help_text = m.groups()
    if kind == "secret":
        shown = "—"
    elif default is None:
        shown = "—"
    elif default == "":
        shown = "(empty)"
    else:
        shown = f"`{default}`"
    lock = " 🔒" if kind == "secret" else ""
    rows.append(f"| `{env}`{lock} | `{env.lower()}` | {flags.get(env, '')} | {shown} | {help_text} Example: `{example}`. |")

head = """# Configuration

Every setting has an environment variable, a YAML key (the same name in lower case, in the
file given with `--config FILE` or `DISPATCHCTL_CONFIG`) and, for a few, a flag. Precedence:
flags > environment (a `.env` file in the working directory is read into it) > YAML file >
defaults. Settings are read and validated once at start-up; a malformed value stops the
process with one line that names the variable, what was wrong and a valid example, and
exit status 2. An empty value counts as unset.

Secrets (marked 🔒) never appear in logs, error messages or `--help`: URLs are shown with
the password replaced by `***`.

Durations take a unit: `250ms`, `5s`, `1m`, `1h30m`.

This file is generated from `src/config.rs` by `scripts/gen-config-doc.py`.

| Variable | YAML key | Flag | Default | Meaning |
|---|---|---|---|---|
"""
tail = """
## Connection strings

- `DATABASE_DSN` accepts a URL (`postgres://user:pass@host:5432/db?sslmode=require`) or the
  libpq key=value form of the Go service's `.env`:
  `host=localhost user=dispatch password=dispatch dbname=dispatch_engine port=5432 sslmode=disable`.
  The database is created at start-up when it does not exist (`serve`, `migrate`).
- `RABBITMQ_URL`: `amqp://` or `amqps://` (TLS via rustls).
- `REDIS_URL`: `redis://` or `rediss://` (TLS via rustls).
- When one of the three is unset, the local default is used and one log line says so.

## Client settings of `dispatchctl send`

| Variable | Flag | Default | Meaning |
|---|---|---|---|
| `DISPATCH_API_URL` | `--api-url` | `http://localhost:8080` | The API that `send` talks to. |
| `DISPATCH_API_TOKEN` 🔒 | `--token` | — | Bearer token sent when the API requires one (never shown in `--help`). |

## Flags that are not settings

| Command | Flag | Meaning |
|---|---|---|
| all | `--config FILE` (`DISPATCHCTL_CONFIG`) | YAML file with settings. |
| `serve` | `--api-only` | Run only the HTTP API (no worker, no scanners). |
| `serve` | `--no-migrate` | Do not apply pending migrations at start-up. |
| `worker` | `--listen ADDR` (default `0.0.0.0:9091`) | Address of `/livez`, `/readyz`, `/metrics`. |
| `worker` | `--channels sms,email` | Consume only these channels. |
| `scan-retries` | `--loop`, `--interval D`, `--listen ADDR` (default `0.0.0.0:9092`) | Daemon mode. |
| `scan-retries` | `--dry-run`, `--drain`, `--max-passes N`, `-o table\\|json` | One-pass options. |

## Example YAML file

```yaml
database_dsn: postgres://dispatch@db:5432/dispatch_engine
rabbitmq_url: amqp://dispatch@rabbitmq:5672/%2f
redis_url: redis://redis:6379/0
webhook_site_url: https://provider.example.com/hook
rate_limit_per_sec: 100
rate_limit_sms_per_sec: 20
worker_concurrency: 32
retry_scan_interval: 5s
log_format: json
```

Unknown keys are refused, so a typo is an error rather than a silently ignored setting.
"""
(root / "docs/CONFIGURATION.md").write_text(head + "\n".join(rows) + "\n" + tail)
print(f"{len(rows)} settings documented")
