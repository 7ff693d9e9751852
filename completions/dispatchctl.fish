# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_dispatchctl_global_optspecs
    string join \n config= h/help V/version
end

function __fish_dispatchctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_dispatchctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_dispatchctl_using_subcommand
    set -l cmd (__fish_dispatchctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -s h -l help -d 'Print help'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "serve" -d 'Run the HTTP API; by default also the worker and the scanners in the same process'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "worker" -d 'Consume the channel queues and deliver notifications to the provider'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "scan-retries" -d 'Re-enqueue due retries, due scheduled notifications, abandoned work and messages the broker lost (one pass, or --loop)'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "migrate" -d 'Apply, list or revert database migrations'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "send" -d 'Send notifications through the HTTP API (for scripts and CI)'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "inspect-dlq" -d 'Look into the dead-letter queues without consuming them'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "replay" -d 'Put dead letters back on the work queues'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "convert-queues" -d 'Move the queues between the classic and the quorum type without losing a message'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "discard" -d 'Remove dead letters that must never be sent (dry run, confirmation, export, audit)'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "prune" -d 'Delete finished notifications, emptied batches and audit rows past their retention period'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "notifications" -d 'Show one notification (status, attempts, where it is now), or list them by filter'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand serve" -l host -d 'Address to listen on [env: API_HOST; default 0.0.0.0]' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand serve" -s p -l port -d 'Port to listen on [env: API_PORT; default 8080]' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand serve" -l tls-cert -d 'Certificate chain (PEM) of the listener, which then speaks HTTPS only (TLS 1.2+); reloaded on SIGHUP and when the file changes [env: TLS_CERT_FILE]' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand serve" -l tls-key -d 'Private key (PEM) of --tls-cert [env: TLS_KEY_FILE]' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand serve" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand serve" -l api-only -d 'Run only the HTTP API (split deployments run `worker` and `scan-retries --loop` apart)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand serve" -l no-migrate -d 'Do not apply pending migrations at start-up'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand serve" -s h -l help -d 'Print help'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand serve" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand worker" -l listen -d 'Address of the /livez, /readyz and /metrics endpoints' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand worker" -l channels -d 'Channels to consume (comma-separated); by default every channel that has a provider' -r -f -a "sms\t''
email\t''
push\t''"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand worker" -l concurrency -d 'Deliveries in flight [env: WORKER_CONCURRENCY; default 192]' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand worker" -l tls-cert -d 'Certificate chain (PEM) of the listener, which then speaks HTTPS only (TLS 1.2+); reloaded on SIGHUP and when the file changes [env: TLS_CERT_FILE]' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand worker" -l tls-key -d 'Private key (PEM) of --tls-cert [env: TLS_KEY_FILE]' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand worker" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand worker" -s h -l help -d 'Print help'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand worker" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -l interval -d 'Interval of both scans in --loop mode (overrides the two settings), e.g. 5s' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -l listen -d 'Address of /livez, /readyz and /metrics in --loop mode' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -l max-passes -d 'With --drain: stop after N passes even if more is due (the next run continues)' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -s o -l output -d 'Output format: table (default on a terminal), json (default otherwise), yaml or ndjson' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t'One JSON object per line (exports)'"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -l tls-cert -d 'Certificate chain (PEM) of the listener, which then speaks HTTPS only (TLS 1.2+); reloaded on SIGHUP and when the file changes [env: TLS_CERT_FILE]' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -l tls-key -d 'Private key (PEM) of --tls-cert [env: TLS_KEY_FILE]' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -l loop -d 'Run as a daemon, scanning every RETRY_SCAN_INTERVAL / SCHEDULER_SCAN_INTERVAL'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -l dry-run -d 'Show what would be enqueued without changing anything'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -l drain -d 'Repeat passes until nothing is due (at most --max-passes)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and not __fish_seen_subcommand_from run status revert" -s o -l output -d 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t'One JSON object per line (exports)'"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and not __fish_seen_subcommand_from run status revert" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and not __fish_seen_subcommand_from run status revert" -s y -l yes -d '`revert` without asking (it asks only on a terminal)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and not __fish_seen_subcommand_from run status revert" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and not __fish_seen_subcommand_from run status revert" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and not __fish_seen_subcommand_from run status revert" -f -a "run" -d 'Apply pending migrations (the default)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and not __fish_seen_subcommand_from run status revert" -f -a "status" -d 'List applied and pending migrations'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and not __fish_seen_subcommand_from run status revert" -f -a "revert" -d 'Undo the most recently applied migration'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from run" -s o -l output -d 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t'One JSON object per line (exports)'"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from run" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from run" -s y -l yes -d '`revert` without asking (it asks only on a terminal)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from run" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -s o -l output -d 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t'One JSON object per line (exports)'"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -s y -l yes -d '`revert` without asking (it asks only on a terminal)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from revert" -s o -l output -d 'Output format of `status`: table (default on a terminal), json (default otherwise), yaml or ndjson' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t'One JSON object per line (exports)'"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from revert" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from revert" -s y -l yes -d '`revert` without asking (it asks only on a terminal)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from revert" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from revert" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l api-url -d 'Base URL of the dispatchctl API [default: from API_HOST and API_PORT, as `serve` reads them (environment, .env, --config); else http://localhost:8080]' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l token -d 'Bearer token, when the API requires one [default: the first of API_TOKENS, as `serve` reads them]' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l channel -d 'sms, email or push' -r -f -a "sms\t''
email\t''
push\t''"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l to -d 'Recipient: phone number, e-mail address or device token' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l content -d 'The message text (SMS: at most 160 characters); or use --content-file' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l content-file -d 'Read the content from a file (- for stdin)' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l priority -d 'high, normal or low (also the default of items in --file that have none)' -r -f -a "high\t''
normal\t''
low\t''"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l idempotency-key -d 'A key of your own: sending again with the same key returns the first notification instead of creating another (safe retries of this command)' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l correlation-id -d 'Your id for tracing this notification across systems (default: a new UUID); it is sent to the provider and appears in the logs' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l max-retries -d 'The attempt budget: at most N delivery attempts in all, the first one included (the API\'s maxRetries; default DEFAULT_MAX_RETRIES, 5)' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l scheduled-at -d 'RFC 3339 time, or relative such as +10m' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -s f -l file -d 'Many notifications from a YAML or JSON file (- for stdin): a list, or {notifications: [...]}, with the API\'s field names' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l timeout -d 'How long --wait waits' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l busy-retry-for -d 'How long to keep sending again a request the API answered as busy (503 or 429 with Retry-After, such as backlog_full: nothing was stored), waiting what Retry-After asks each time; 0 gives up at once (exit 4)' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -s o -l output -d 'Output format: table (default on a terminal), json (default otherwise), yaml, or ndjson (the result as one line)' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t'One JSON object per line (exports)'"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l wait -d 'Wait until every notification is SENT, FAILED or CANCELED'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -s q -l quiet -d 'No spinner'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand inspect-dlq" -l id -d 'Notification id (repeatable)' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand inspect-dlq" -l channel -d 'Only this channel\'s DLQ (repeatable): sms, email, push' -r -f -a "sms\t''
email\t''
push\t''"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand inspect-dlq" -l reason -d 'Only this reason: permanent_error, retry_exhausted, invalid_message, not_found' -r -f -a "permanent_error\t''
retry_exhausted\t''
invalid_message\t''
not_found\t''"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand inspect-dlq" -l since -d 'Dead-lettered at or after: RFC 3339, or an age such as 2h (= 2 hours ago)' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand inspect-dlq" -l until -d 'Dead-lettered at or before: RFC 3339, or an age such as 30m' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand inspect-dlq" -l limit -d 'At most this many letters are listed or acted on; the rest stay in the DLQ, in order' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand inspect-dlq" -s o -l output -d 'table (default on a terminal), json, yaml, or ndjson (one dead letter per line, with headers and body: the archive format)' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t'One JSON object per line (exports)'"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand inspect-dlq" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand inspect-dlq" -l list -d 'List messages instead of the per-channel summary'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand inspect-dlq" -l show-recipient -d 'Show recipients unmasked'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand inspect-dlq" -l history -d 'List past replays (the audit trail)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand inspect-dlq" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand inspect-dlq" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l id -d 'Notification id (repeatable)' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l channel -d 'Only this channel\'s DLQ (repeatable): sms, email, push' -r -f -a "sms\t''
email\t''
push\t''"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l reason -d 'Only this reason: permanent_error, retry_exhausted, invalid_message, not_found' -r -f -a "permanent_error\t''
retry_exhausted\t''
invalid_message\t''
not_found\t''"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l since -d 'Dead-lettered at or after: RFC 3339, or an age such as 2h (= 2 hours ago)' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l until -d 'Dead-lettered at or before: RFC 3339, or an age such as 30m' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l limit -d 'At most this many letters are listed or acted on; the rest stay in the DLQ, in order' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l rate -d 'At most N replays per second, to spare a provider that just recovered' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l timeout -d 'How long --wait waits' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -s o -l output -d 'Output format of the summary: table (default on a terminal), json (default otherwise), yaml or ndjson' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t'One JSON object per line (exports)'"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l all -d 'Replay every dead letter (asks for confirmation on a terminal unless --yes)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -s y -l yes -d 'Do not ask for confirmation'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l dry-run -d 'List what would be replayed; change nothing'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l reset-attempts -d 'Give replayed notifications a fresh attempt budget (default: one more attempt)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l from-db -d 'Replay FAILED notifications from PostgreSQL (for dead letters that were purged)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l wait -d 'After replaying, wait (at most --timeout) until every replayed notification is SENT or FAILED again, and report which failed again and why (exit 1 if any did)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -s q -l quiet -d 'No progress bar'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand convert-queues" -l to -d 'The queue type to convert to [default: QUEUE_TYPE]' -r -f -a "classic\t''
quorum\t''"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand convert-queues" -s o -l output -d 'Output format: table, json, yaml or ndjson [default: table on a terminal, json otherwise]' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t'One JSON object per line (exports)'"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand convert-queues" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand convert-queues" -l dry-run -d 'Say what would move; change nothing'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand convert-queues" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand convert-queues" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand discard" -l id -d 'Notification id (repeatable)' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand discard" -l channel -d 'Only this channel\'s DLQ (repeatable): sms, email, push' -r -f -a "sms\t''
email\t''
push\t''"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand discard" -l reason -d 'Only this reason: permanent_error, retry_exhausted, invalid_message, not_found' -r -f -a "permanent_error\t''
retry_exhausted\t''
invalid_message\t''
not_found\t''"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand discard" -l since -d 'Dead-lettered at or after: RFC 3339, or an age such as 2h (= 2 hours ago)' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand discard" -l until -d 'Dead-lettered at or before: RFC 3339, or an age such as 30m' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand discard" -l limit -d 'At most this many letters are listed or acted on; the rest stay in the DLQ, in order' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand discard" -l export -d 'Append every discarded letter to FILE (one JSON object per line) before removing it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand discard" -s o -l output -d 'Output format: table (default on a terminal), json (default otherwise) or yaml' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t'One JSON object per line (exports)'"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand discard" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand discard" -l all -d 'Discard every dead letter of the selected channels (all channels without --channel)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand discard" -l dry-run -d 'List what would be discarded; change nothing'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand discard" -s y -l yes -d 'Do not ask for confirmation (required when stdin is not a terminal)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand discard" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand discard" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand prune" -l export -d 'Append each deleted notification with its attempts as one JSON line to FILE (`-`: stdout, and the summary goes to stderr), written before its batch is deleted' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand prune" -l older-than -d 'Notifications untouched for longer than this go (overrides RETENTION_PERIOD), e.g. 30d' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand prune" -l audit-older-than -d 'Audit rows older than this go (overrides AUDIT_RETENTION_PERIOD), e.g. 365d' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand prune" -l batch-size -d 'Rows per transaction (overrides PRUNE_BATCH_SIZE)' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand prune" -l max-rate -d 'Most notifications deleted per second, 0 for no limit (overrides PRUNE_MAX_RATE)' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand prune" -s o -l output -d 'Output format: table (default on a terminal), json (default otherwise) or yaml' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t'One JSON object per line (exports)'"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand prune" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand prune" -l dry-run -d 'Count what would be deleted, per status and channel; change nothing'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand prune" -s q -l quiet -d 'No progress bar'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand prune" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand prune" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand notifications" -l status -d 'Only this status: ACCEPTED, QUEUED, SENDING, SENT, FAILED, CANCELED' -r -f -a "ACCEPTED\t''
QUEUED\t''
SENDING\t''
SENT\t''
FAILED\t''
CANCELED\t''"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand notifications" -l channel -d 'Only this channel: sms, email, push' -r -f -a "sms\t''
email\t''
push\t''"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand notifications" -l to -d 'Only this recipient (exact)' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand notifications" -l since -d 'Created at or after: RFC 3339, or an age such as 2h' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand notifications" -l until -d 'Created at or before: RFC 3339, or an age such as 30m' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand notifications" -l limit -d 'At most this many, newest first (with --stuck: longest waiting first)' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand notifications" -l older-than -d 'With --stuck: the wait that counts as stuck, such as 30s or 10m (default REQUEUE_LOST_AFTER)' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand notifications" -s o -l output -d 'Output format: table (default on a terminal), json (default otherwise), yaml, or ndjson (one notification per line)' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t'One JSON object per line (exports)'"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand notifications" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand notifications" -l stuck -d 'List what is not final and has waited longer than --older-than: why each waits (in its queue, lost by the broker, a retry, a lease), and what the scanner does about it'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand notifications" -l show-recipient -d 'Show recipients unmasked'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand notifications" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand notifications" -s V -l version -d 'Print version'
