
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'dispatchctl' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'dispatchctl'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'dispatchctl' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the HTTP API; by default also the worker and the scanners in the same process')
            [CompletionResult]::new('worker', 'worker', [CompletionResultType]::ParameterValue, 'Consume the channel queues and deliver notifications to the provider')
            [CompletionResult]::new('scan-retries', 'scan-retries', [CompletionResultType]::ParameterValue, 'Re-enqueue due retries, due scheduled notifications, abandoned work and messages the broker lost (one pass, or --loop)')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Apply, list or revert database migrations')
            [CompletionResult]::new('send', 'send', [CompletionResultType]::ParameterValue, 'Send notifications through the HTTP API (for scripts and CI)')
            [CompletionResult]::new('inspect-dlq', 'inspect-dlq', [CompletionResultType]::ParameterValue, 'Look into the dead-letter queues without consuming them')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Put dead letters back on the work queues')
            [CompletionResult]::new('convert-queues', 'convert-queues', [CompletionResultType]::ParameterValue, 'Move the queues between the classic and the quorum type without losing a message')
            [CompletionResult]::new('discard', 'discard', [CompletionResultType]::ParameterValue, 'Remove dead letters that must never be sent (dry run, confirmation, export, audit)')
            [CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue, 'Delete finished notifications, emptied batches and audit rows past their retention period')
            [CompletionResult]::new('notifications', 'notifications', [CompletionResultType]::ParameterValue, 'Show one notification (status, attempts, where it is now), or list them by filter')
            break
        }
        'dispatchctl;serve' {
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'Address to listen on [env: API_HOST; default 0.0.0.0]')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Port to listen on [env: API_PORT; default 8080]')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port to listen on [env: API_PORT; default 8080]')
            [CompletionResult]::new('--tls-cert', '--tls-cert', [CompletionResultType]::ParameterName, 'Certificate chain (PEM) of the listener, which then speaks HTTPS only (TLS 1.2+); reloaded on SIGHUP and when the file changes [env: TLS_CERT_FILE]')
            [CompletionResult]::new('--tls-key', '--tls-key', [CompletionResultType]::ParameterName, 'Private key (PEM) of --tls-cert [env: TLS_KEY_FILE]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('--api-only', '--api-only', [CompletionResultType]::ParameterName, 'Run only the HTTP API (split deployments run `worker` and `scan-retries --loop` apart)')
            [CompletionResult]::new('--no-migrate', '--no-migrate', [CompletionResultType]::ParameterName, 'Do not apply pending migrations at start-up')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;worker' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address of the /livez, /readyz and /metrics endpoints')
            [CompletionResult]::new('--channels', '--channels', [CompletionResultType]::ParameterName, 'Channels to consume (comma-separated); by default every channel that has a provider')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'Deliveries in flight [env: WORKER_CONCURRENCY; default 192]')
            [CompletionResult]::new('--tls-cert', '--tls-cert', [CompletionResultType]::ParameterName, 'Certificate chain (PEM) of the listener, which then speaks HTTPS only (TLS 1.2+); reloaded on SIGHUP and when the file changes [env: TLS_CERT_FILE]')
            [CompletionResult]::new('--tls-key', '--tls-key', [CompletionResultType]::ParameterName, 'Private key (PEM) of --tls-cert [env: TLS_KEY_FILE]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;scan-retries' {
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Interval of both scans in --loop mode (overrides the two settings), e.g. 5s')
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address of /livez, /readyz and /metrics in --loop mode')
            [CompletionResult]::new('--max-passes', '--max-passes', [CompletionResultType]::ParameterName, 'With --drain: stop after N passes even if more is due (the next run continues)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: table (default on a terminal), json (default otherwise), yaml or ndjson')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: table (default on a terminal), json (default otherwise), yaml or ndjson')
            [CompletionResult]::new('--tls-cert', '--tls-cert', [CompletionResultType]::ParameterName, 'Certificate chain (PEM) of the listener, which then speaks HTTPS only (TLS 1.2+); reloaded on SIGHUP and when the file changes [env: TLS_CERT_FILE]')
            [CompletionResult]::new('--tls-key', '--tls-key', [CompletionResultType]::ParameterName, 'Private key (PEM) of --tls-cert [env: TLS_KEY_FILE]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('--loop', '--loop', [CompletionResultType]::ParameterName, 'Run as a daemon, scanning every RETRY_SCAN_INTERVAL / SCHEDULER_SCAN_INTERVAL')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show what would be enqueued without changing anything')
            [CompletionResult]::new('--drain', '--drain', [CompletionResultType]::ParameterName, 'Repeat passes until nothing is due (at most --max-passes)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;migrate' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, '`revert` without asking (it asks only on a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, '`revert` without asking (it asks only on a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Apply pending migrations (the default)')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'List applied and pending migrations')
            [CompletionResult]::new('revert', 'revert', [CompletionResultType]::ParameterValue, 'Undo the most recently applied migration')
            break
        }
        'dispatchctl;migrate;run' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, '`revert` without asking (it asks only on a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, '`revert` without asking (it asks only on a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;migrate;status' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, '`revert` without asking (it asks only on a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, '`revert` without asking (it asks only on a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;migrate;revert' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, '`revert` without asking (it asks only on a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, '`revert` without asking (it asks only on a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;send' {
            [CompletionResult]::new('--api-url', '--api-url', [CompletionResultType]::ParameterName, 'Base URL of the dispatchctl API [default: from API_HOST and API_PORT, as `serve` reads them (environment, .env, --config); else http://localhost:8080]')
            [CompletionResult]::new('--token', '--token', [CompletionResultType]::ParameterName, 'Bearer token, when the API requires one [default: the first of API_TOKENS, as `serve` reads them]')
            [CompletionResult]::new('--channel', '--channel', [CompletionResultType]::ParameterName, 'sms, email or push')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Recipient: phone number, e-mail address or device token')
            [CompletionResult]::new('--content', '--content', [CompletionResultType]::ParameterName, 'The message text (SMS: at most 160 characters); or use --content-file')
            [CompletionResult]::new('--content-file', '--content-file', [CompletionResultType]::ParameterName, 'Read the content from a file (- for stdin)')
            [CompletionResult]::new('--priority', '--priority', [CompletionResultType]::ParameterName, 'high, normal or low (also the default of items in --file that have none)')
            [CompletionResult]::new('--idempotency-key', '--idempotency-key', [CompletionResultType]::ParameterName, 'A key of your own: sending again with the same key returns the first notification instead of creating another (safe retries of this command)')
            [CompletionResult]::new('--correlation-id', '--correlation-id', [CompletionResultType]::ParameterName, 'Your id for tracing this notification across systems (default: a new UUID); it is sent to the provider and appears in the logs')
            [CompletionResult]::new('--max-retries', '--max-retries', [CompletionResultType]::ParameterName, 'The attempt budget: at most N delivery attempts in all, the first one included (the API''s maxRetries; default DEFAULT_MAX_RETRIES, 5)')
            [CompletionResult]::new('--scheduled-at', '--scheduled-at', [CompletionResultType]::ParameterName, 'RFC 3339 time, or relative such as +10m')
            [CompletionResult]::new('-f', '-f', [CompletionResultType]::ParameterName, 'Many notifications from a YAML or JSON file (- for stdin): a list, or {notifications: [...]}, with the API''s field names')
            [CompletionResult]::new('--file', '--file', [CompletionResultType]::ParameterName, 'Many notifications from a YAML or JSON file (- for stdin): a list, or {notifications: [...]}, with the API''s field names')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long --wait waits')
            [CompletionResult]::new('--busy-retry-for', '--busy-retry-for', [CompletionResultType]::ParameterName, 'How long to keep sending again a request the API answered as busy (503 or 429 with Retry-After, such as backlog_full: nothing was stored), waiting what Retry-After asks each time; 0 gives up at once (exit 4)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: table (default on a terminal), json (default otherwise), yaml, or ndjson (the result as one line)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: table (default on a terminal), json (default otherwise), yaml, or ndjson (the result as one line)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'Wait until every notification is SENT, FAILED or CANCELED')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No spinner')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No spinner')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;inspect-dlq' {
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'Notification id (repeatable)')
            [CompletionResult]::new('--channel', '--channel', [CompletionResultType]::ParameterName, 'Only this channel''s DLQ (repeatable): sms, email, push')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Only this reason: permanent_error, retry_exhausted, invalid_message, not_found')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Dead-lettered at or after: RFC 3339, or an age such as 2h (= 2 hours ago)')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'Dead-lettered at or before: RFC 3339, or an age such as 30m')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'At most this many letters are listed or acted on; the rest stay in the DLQ, in order')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'table (default on a terminal), json, yaml, or ndjson (one dead letter per line, with headers and body: the archive format)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'table (default on a terminal), json, yaml, or ndjson (one dead letter per line, with headers and body: the archive format)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('--list', '--list', [CompletionResultType]::ParameterName, 'List messages instead of the per-channel summary')
            [CompletionResult]::new('--show-recipient', '--show-recipient', [CompletionResultType]::ParameterName, 'Show recipients unmasked')
            [CompletionResult]::new('--history', '--history', [CompletionResultType]::ParameterName, 'List past replays (the audit trail)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;replay' {
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'Notification id (repeatable)')
            [CompletionResult]::new('--channel', '--channel', [CompletionResultType]::ParameterName, 'Only this channel''s DLQ (repeatable): sms, email, push')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Only this reason: permanent_error, retry_exhausted, invalid_message, not_found')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Dead-lettered at or after: RFC 3339, or an age such as 2h (= 2 hours ago)')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'Dead-lettered at or before: RFC 3339, or an age such as 30m')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'At most this many letters are listed or acted on; the rest stay in the DLQ, in order')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'At most N replays per second, to spare a provider that just recovered')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long --wait waits')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format of the summary: table (default on a terminal), json (default otherwise), yaml or ndjson')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format of the summary: table (default on a terminal), json (default otherwise), yaml or ndjson')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Replay every dead letter (asks for confirmation on a terminal unless --yes)')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'List what would be replayed; change nothing')
            [CompletionResult]::new('--reset-attempts', '--reset-attempts', [CompletionResultType]::ParameterName, 'Give replayed notifications a fresh attempt budget (default: one more attempt)')
            [CompletionResult]::new('--from-db', '--from-db', [CompletionResultType]::ParameterName, 'Replay FAILED notifications from PostgreSQL (for dead letters that were purged)')
            [CompletionResult]::new('--wait', '--wait', [CompletionResultType]::ParameterName, 'After replaying, wait (at most --timeout) until every replayed notification is SENT or FAILED again, and report which failed again and why (exit 1 if any did)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress bar')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress bar')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;convert-queues' {
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'The queue type to convert to [default: QUEUE_TYPE]')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: table, json, yaml or ndjson [default: table on a terminal, json otherwise]')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: table, json, yaml or ndjson [default: table on a terminal, json otherwise]')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Say what would move; change nothing')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;discard' {
            [CompletionResult]::new('--id', '--id', [CompletionResultType]::ParameterName, 'Notification id (repeatable)')
            [CompletionResult]::new('--channel', '--channel', [CompletionResultType]::ParameterName, 'Only this channel''s DLQ (repeatable): sms, email, push')
            [CompletionResult]::new('--reason', '--reason', [CompletionResultType]::ParameterName, 'Only this reason: permanent_error, retry_exhausted, invalid_message, not_found')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Dead-lettered at or after: RFC 3339, or an age such as 2h (= 2 hours ago)')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'Dead-lettered at or before: RFC 3339, or an age such as 30m')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'At most this many letters are listed or acted on; the rest stay in the DLQ, in order')
            [CompletionResult]::new('--export', '--export', [CompletionResultType]::ParameterName, 'Append every discarded letter to FILE (one JSON object per line) before removing it')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: table (default on a terminal), json (default otherwise) or yaml')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: table (default on a terminal), json (default otherwise) or yaml')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Discard every dead letter of the selected channels (all channels without --channel)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'List what would be discarded; change nothing')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Do not ask for confirmation (required when stdin is not a terminal)')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Do not ask for confirmation (required when stdin is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;prune' {
            [CompletionResult]::new('--export', '--export', [CompletionResultType]::ParameterName, 'Append each deleted notification with its attempts as one JSON line to FILE (`-`: stdout, and the summary goes to stderr), written before its batch is deleted')
            [CompletionResult]::new('--older-than', '--older-than', [CompletionResultType]::ParameterName, 'Notifications untouched for longer than this go (overrides RETENTION_PERIOD), e.g. 30d')
            [CompletionResult]::new('--audit-older-than', '--audit-older-than', [CompletionResultType]::ParameterName, 'Audit rows older than this go (overrides AUDIT_RETENTION_PERIOD), e.g. 365d')
            [CompletionResult]::new('--batch-size', '--batch-size', [CompletionResultType]::ParameterName, 'Rows per transaction (overrides PRUNE_BATCH_SIZE)')
            [CompletionResult]::new('--max-rate', '--max-rate', [CompletionResultType]::ParameterName, 'Most notifications deleted per second, 0 for no limit (overrides PRUNE_MAX_RATE)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: table (default on a terminal), json (default otherwise) or yaml')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: table (default on a terminal), json (default otherwise) or yaml')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Count what would be deleted, per status and channel; change nothing')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'No progress bar')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'No progress bar')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;notifications' {
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Only this status: ACCEPTED, QUEUED, SENDING, SENT, FAILED, CANCELED')
            [CompletionResult]::new('--channel', '--channel', [CompletionResultType]::ParameterName, 'Only this channel: sms, email, push')
            [CompletionResult]::new('--to', '--to', [CompletionResultType]::ParameterName, 'Only this recipient (exact)')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Created at or after: RFC 3339, or an age such as 2h')
            [CompletionResult]::new('--until', '--until', [CompletionResultType]::ParameterName, 'Created at or before: RFC 3339, or an age such as 30m')
            [CompletionResult]::new('--limit', '--limit', [CompletionResultType]::ParameterName, 'At most this many, newest first (with --stuck: longest waiting first)')
            [CompletionResult]::new('--older-than', '--older-than', [CompletionResultType]::ParameterName, 'With --stuck: the wait that counts as stuck, such as 30s or 10m (default REQUEUE_LOST_AFTER)')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: table (default on a terminal), json (default otherwise), yaml, or ndjson (one notification per line)')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: table (default on a terminal), json (default otherwise), yaml, or ndjson (one notification per line)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('--stuck', '--stuck', [CompletionResultType]::ParameterName, 'List what is not final and has waited longer than --older-than: why each waits (in its queue, lost by the broker, a retry, a lease), and what the scanner does about it')
            [CompletionResult]::new('--show-recipient', '--show-recipient', [CompletionResultType]::ParameterName, 'Show recipients unmasked')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
