
use builtin;
use str;

set edit:completion:arg-completer[dispatchctl] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'dispatchctl'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'dispatchctl'= {
            cand --config 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand serve 'Run the HTTP API; by default also the worker and the scanners in the same process'
            cand worker 'Consume the channel queues and deliver notifications to the provider'
            cand scan-retries 'Re-enqueue due retries, due scheduled notifications and abandoned work (one pass, or --loop)'
            cand migrate 'Apply, list or revert database migrations'
            cand send 'Send notifications through the HTTP API (for scripts and CI)'
            cand inspect-dlq 'Look into the dead-letter queues without consuming them'
            cand replay 'Put dead letters back on the work queues'
            cand convert-queues 'Move the queues between the classic and the quorum type without losing a message'
            cand discard 'Remove dead letters that must never be sent (dry run, confirmation, export, audit)'
            cand notifications 'Show one notification (status, attempts, where it is now), or list them by filter'
        }
        &'dispatchctl;serve'= {
            cand --host 'Address to listen on [env: API_HOST; default 0.0.0.0]'
            cand -p 'Port to listen on [env: API_PORT; default 8080]'
            cand --port 'Port to listen on [env: API_PORT; default 8080]'
            cand --config 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it'
            cand --api-only 'Run only the HTTP API (split deployments run `worker` and `scan-retries --loop` apart)'
            cand --no-migrate 'Do not apply pending migrations at start-up'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dispatchctl;worker'= {
            cand --listen 'Address of the /livez, /readyz and /metrics endpoints'
            cand --channels 'Channels to consume (comma-separated); all by default'
            cand --concurrency 'Deliveries in flight [env: WORKER_CONCURRENCY; default 64]'
            cand --config 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dispatchctl;scan-retries'= {
            cand --interval 'Interval of both scans in --loop mode (overrides the two settings), e.g. 5s'
            cand --listen 'Address of /livez, /readyz and /metrics in --loop mode'
            cand --max-passes 'With --drain: stop after N passes even if more is due (the next run continues)'
            cand -o 'Output format: table (default on a terminal), json (default otherwise), yaml or ndjson'
            cand --output 'Output format: table (default on a terminal), json (default otherwise), yaml or ndjson'
            cand --config 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it'
            cand --loop 'Run as a daemon, scanning every RETRY_SCAN_INTERVAL / SCHEDULER_SCAN_INTERVAL'
            cand --dry-run 'Show what would be enqueued without changing anything'
            cand --drain 'Repeat passes until nothing is due (at most --max-passes)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dispatchctl;migrate'= {
            cand -o 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson'
            cand --output 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson'
            cand --config 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it'
            cand -y '`revert` without asking (it asks only on a terminal)'
            cand --yes '`revert` without asking (it asks only on a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand run 'Apply pending migrations (the default)'
            cand status 'List applied and pending migrations'
            cand revert 'Undo the most recently applied migration'
        }
        &'dispatchctl;migrate;run'= {
            cand -o 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson'
            cand --output 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson'
            cand --config 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it'
            cand -y '`revert` without asking (it asks only on a terminal)'
            cand --yes '`revert` without asking (it asks only on a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dispatchctl;migrate;status'= {
            cand -o 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson'
            cand --output 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson'
            cand --config 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it'
            cand -y '`revert` without asking (it asks only on a terminal)'
            cand --yes '`revert` without asking (it asks only on a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dispatchctl;migrate;revert'= {
            cand -o 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson'
            cand --output 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson'
            cand --config 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it'
            cand -y '`revert` without asking (it asks only on a terminal)'
            cand --yes '`revert` without asking (it asks only on a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dispatchctl;send'= {
            cand --api-url 'Base URL of the dispatchctl API [default: from API_HOST and API_PORT, as `serve` reads them (environment, .env, --config); else http://localhost:8080]'
            cand --token 'Bearer token, when the API requires one [default: the first of API_TOKENS, as `serve` reads them]'
            cand --channel 'sms, email or push'
            cand --to 'Recipient: phone number, e-mail address or device token'
            cand --content 'The message text (SMS: at most 160 characters); or use --content-file'
            cand --content-file 'Read the content from a file (- for stdin)'
            cand --priority 'high, normal or low (also the default of items in --file that have none)'
            cand --idempotency-key 'A key of your own: sending again with the same key returns the first notification instead of creating another (safe retries of this command)'
            cand --correlation-id 'Your id for tracing this notification across systems (default: a new UUID); it is sent to the provider and appears in the logs'
            cand --max-retries 'The attempt budget: at most N delivery attempts in all, the first one included (the API''s maxRetries; default DEFAULT_MAX_RETRIES, 5)'
            cand --scheduled-at 'RFC 3339 time, or relative such as +10m'
            cand -f 'Many notifications from a YAML or JSON file (- for stdin): a list, or {notifications: [...]}, with the API''s field names'
            cand --file 'Many notifications from a YAML or JSON file (- for stdin): a list, or {notifications: [...]}, with the API''s field names'
            cand --timeout 'How long --wait waits'
            cand -o 'Output format: table (default on a terminal), json (default otherwise), yaml, or ndjson (the result as one line)'
            cand --output 'Output format: table (default on a terminal), json (default otherwise), yaml, or ndjson (the result as one line)'
            cand --config 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it'
            cand --wait 'Wait until every notification is SENT, FAILED or CANCELED'
            cand -q 'No spinner'
            cand --quiet 'No spinner'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dispatchctl;inspect-dlq'= {
            cand --id 'Notification id (repeatable)'
            cand --channel 'Only this channel''s DLQ (repeatable): sms, email, push'
            cand --reason 'Only this reason: permanent_error, retry_exhausted, invalid_message, not_found'
            cand --since 'Dead-lettered at or after: RFC 3339, or an age such as 2h (= 2 hours ago)'
            cand --until 'Dead-lettered at or before: RFC 3339, or an age such as 30m'
            cand --limit 'At most this many letters are listed or acted on; the rest stay in the DLQ, in order'
            cand -o 'table (default on a terminal), json, yaml, or ndjson (one dead letter per line, with headers and body: the archive format)'
            cand --output 'table (default on a terminal), json, yaml, or ndjson (one dead letter per line, with headers and body: the archive format)'
            cand --config 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it'
            cand --list 'List messages instead of the per-channel summary'
            cand --show-recipient 'Show recipients unmasked'
            cand --history 'List past replays (the audit trail)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dispatchctl;replay'= {
            cand --id 'Notification id (repeatable)'
            cand --channel 'Only this channel''s DLQ (repeatable): sms, email, push'
            cand --reason 'Only this reason: permanent_error, retry_exhausted, invalid_message, not_found'
            cand --since 'Dead-lettered at or after: RFC 3339, or an age such as 2h (= 2 hours ago)'
            cand --until 'Dead-lettered at or before: RFC 3339, or an age such as 30m'
            cand --limit 'At most this many letters are listed or acted on; the rest stay in the DLQ, in order'
            cand --rate 'At most N replays per second, to spare a provider that just recovered'
            cand --timeout 'How long --wait waits'
            cand -o 'Output format of the summary: table (default on a terminal), json (default otherwise), yaml or ndjson'
            cand --output 'Output format of the summary: table (default on a terminal), json (default otherwise), yaml or ndjson'
            cand --config 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it'
            cand --all 'Replay every dead letter (asks for confirmation on a terminal unless --yes)'
            cand -y 'Do not ask for confirmation'
            cand --yes 'Do not ask for confirmation'
            cand --dry-run 'List what would be replayed; change nothing'
            cand --reset-attempts 'Give replayed notifications a fresh attempt budget (default: one more attempt)'
            cand --from-db 'Replay FAILED notifications from PostgreSQL (for dead letters that were purged)'
            cand --wait 'After replaying, wait (at most --timeout) until every replayed notification is SENT or FAILED again, and report which failed again and why (exit 1 if any did)'
            cand -q 'No progress bar'
            cand --quiet 'No progress bar'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dispatchctl;convert-queues'= {
            cand --to 'The queue type to convert to [default: QUEUE_TYPE]'
            cand -o 'Output format: table, json, yaml or ndjson [default: table on a terminal, json otherwise]'
            cand --output 'Output format: table, json, yaml or ndjson [default: table on a terminal, json otherwise]'
            cand --config 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it'
            cand --dry-run 'Say what would move; change nothing'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dispatchctl;discard'= {
            cand --id 'Notification id (repeatable)'
            cand --channel 'Only this channel''s DLQ (repeatable): sms, email, push'
            cand --reason 'Only this reason: permanent_error, retry_exhausted, invalid_message, not_found'
            cand --since 'Dead-lettered at or after: RFC 3339, or an age such as 2h (= 2 hours ago)'
            cand --until 'Dead-lettered at or before: RFC 3339, or an age such as 30m'
            cand --limit 'At most this many letters are listed or acted on; the rest stay in the DLQ, in order'
            cand --export 'Append every discarded letter to FILE (one JSON object per line) before removing it'
            cand -o 'Output format: table (default on a terminal), json (default otherwise) or yaml'
            cand --output 'Output format: table (default on a terminal), json (default otherwise) or yaml'
            cand --config 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it'
            cand --all 'Discard every dead letter of the selected channels (all channels without --channel)'
            cand --dry-run 'List what would be discarded; change nothing'
            cand -y 'Do not ask for confirmation (required when stdin is not a terminal)'
            cand --yes 'Do not ask for confirmation (required when stdin is not a terminal)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'dispatchctl;notifications'= {
            cand --status 'Only this status: ACCEPTED, QUEUED, SENDING, SENT, FAILED, CANCELED'
            cand --channel 'Only this channel: sms, email, push'
            cand --to 'Only this recipient (exact)'
            cand --since 'Created at or after: RFC 3339, or an age such as 2h'
            cand --until 'Created at or before: RFC 3339, or an age such as 30m'
            cand --limit 'At most this many, newest first'
            cand -o 'Output format: table (default on a terminal), json (default otherwise), yaml, or ndjson (one notification per line)'
            cand --output 'Output format: table (default on a terminal), json (default otherwise), yaml, or ndjson (one notification per line)'
            cand --config 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it'
            cand --show-recipient 'Show recipients unmasked'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
        }
    ]
    $completions[$command]
}
