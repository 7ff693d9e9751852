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
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "scan-retries" -d 'Re-enqueue due retries, due scheduled notifications and abandoned work (one pass, or --loop)'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "migrate" -d 'Apply, list or revert database migrations'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "send" -d 'Send notifications through the HTTP API (for scripts and CI)'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "inspect-dlq" -d 'Look into the dead-letter queues without consuming them'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "replay" -d 'Put dead letters back on the work queues'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "convert-queues" -d 'Move the queues between the classic and the quorum type without losing a message'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "man" -d 'Write man pages into a directory'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "healthcheck" -d 'Exit 0 when an HTTP endpoint answers 200 (container health checks; the image has no curl)'
complete -c dispatchctl -n "__fish_dispatchctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand serve" -l host -d 'Address to listen on [env: API_HOST; default 0.0.0.0]' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand serve" -s p -l port -d 'Port to listen on [env: API_PORT; default 8080]' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand serve" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand serve" -l api-only -d 'Run only the HTTP API (split deployments run `worker` and `scan-retries --loop` apart)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand serve" -l no-migrate -d 'Do not apply pending migrations at start-up'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand serve" -s h -l help -d 'Print help'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand serve" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand worker" -l listen -d 'Address of the /livez, /readyz and /metrics endpoints' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand worker" -l channels -d 'Channels to consume (comma-separated); all by default' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand worker" -l concurrency -d 'Deliveries in flight [env: WORKER_CONCURRENCY; default 64]' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand worker" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand worker" -s h -l help -d 'Print help'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand worker" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -l interval -d 'Interval of both scans in --loop mode (overrides the two settings), e.g. 5s' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -l listen -d 'Address of /livez, /readyz and /metrics in --loop mode' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -l max-passes -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -s o -l output -d 'Output format: table (default on a terminal) or json' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t'One JSON object per line (exports)'"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -l loop -d 'Run as a daemon, scanning every RETRY_SCAN_INTERVAL / SCHEDULER_SCAN_INTERVAL'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -l dry-run -d 'Show what would be enqueued without changing anything'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -l drain -d 'Repeat passes until nothing is due (at most --max-passes)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand scan-retries" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and not __fish_seen_subcommand_from run status revert help" -s o -l output -d 'Output format of `status`' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t'One JSON object per line (exports)'"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and not __fish_seen_subcommand_from run status revert help" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and not __fish_seen_subcommand_from run status revert help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and not __fish_seen_subcommand_from run status revert help" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and not __fish_seen_subcommand_from run status revert help" -f -a "run" -d 'Apply pending migrations (the default)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and not __fish_seen_subcommand_from run status revert help" -f -a "status" -d 'List applied and pending migrations'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and not __fish_seen_subcommand_from run status revert help" -f -a "revert" -d 'Undo the most recently applied migration'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and not __fish_seen_subcommand_from run status revert help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from run" -s o -l output -d 'Output format of `status`' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t'One JSON object per line (exports)'"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from run" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from run" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -s o -l output -d 'Output format of `status`' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t'One JSON object per line (exports)'"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from revert" -s o -l output -d 'Output format of `status`' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t'One JSON object per line (exports)'"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from revert" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from revert" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from revert" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "run" -d 'Apply pending migrations (the default)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "status" -d 'List applied and pending migrations'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "revert" -d 'Undo the most recently applied migration'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand migrate; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l api-url -d 'Base URL of the dispatchctl API' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l token -d 'Bearer token, when the API requires one' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l channel -d 'sms, email or push' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l to -d 'Recipient: phone number, e-mail address or device token' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l content -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l content-file -d 'Read the content from a file (- for stdin)' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l priority -d 'high, normal or low' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l idempotency-key -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l correlation-id -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l max-retries -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l scheduled-at -d 'RFC 3339 time, or relative such as +10m' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -s f -l file -d 'Many notifications from a YAML or JSON file (- for stdin): a list, or {notifications: [...]}, with the API\'s field names' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l timeout -d 'How long --wait waits' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -s o -l output -d 'table (default on a terminal), json or yaml' -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t'One JSON object per line (exports)'"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -l wait -d 'Wait until every notification is SENT, FAILED or CANCELED'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -s q -l quiet -d 'No spinner'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand send" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand inspect-dlq" -l id -d 'Notification id (repeatable)' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand inspect-dlq" -l channel -d 'Only this channel\'s DLQ (repeatable): sms, email, push' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand inspect-dlq" -l reason -d 'Only this reason: permanent_error, retry_exhausted, invalid_message, not_found' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand inspect-dlq" -l since -d 'Dead-lettered at or after: RFC 3339, or an age such as 2h (= 2 hours ago)' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand inspect-dlq" -l until -d 'Dead-lettered at or before: RFC 3339, or an age such as 30m' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand inspect-dlq" -l limit -d 'At most this many messages' -r
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
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l channel -d 'Only this channel\'s DLQ (repeatable): sms, email, push' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l reason -d 'Only this reason: permanent_error, retry_exhausted, invalid_message, not_found' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l since -d 'Dead-lettered at or after: RFC 3339, or an age such as 2h (= 2 hours ago)' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l until -d 'Dead-lettered at or before: RFC 3339, or an age such as 30m' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l limit -d 'At most this many messages' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l rate -d 'At most N replays per second, to spare a provider that just recovered' -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -s o -l output -r -f -a "table\t''
json\t''
yaml\t''
ndjson\t'One JSON object per line (exports)'"
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l all -d 'Replay every dead letter (asks for confirmation on a terminal unless --yes)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -s y -l yes -d 'Do not ask for confirmation'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l dry-run -d 'List what would be replayed; change nothing'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l reset-attempts -d 'Give replayed notifications a fresh attempt budget (default: one more attempt)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand replay" -l from-db -d 'Replay FAILED notifications from PostgreSQL (for dead letters that were purged)'
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
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand completions" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand completions" -s h -l help -d 'Print help'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand completions" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand man" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand man" -s h -l help -d 'Print help'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand man" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand healthcheck" -l url -r
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand healthcheck" -l config -d 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it' -r -F
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand healthcheck" -s h -l help -d 'Print help'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand healthcheck" -s V -l version -d 'Print version'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand help; and not __fish_seen_subcommand_from serve worker scan-retries migrate send inspect-dlq replay convert-queues completions man healthcheck help" -f -a "serve" -d 'Run the HTTP API; by default also the worker and the scanners in the same process'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand help; and not __fish_seen_subcommand_from serve worker scan-retries migrate send inspect-dlq replay convert-queues completions man healthcheck help" -f -a "worker" -d 'Consume the channel queues and deliver notifications to the provider'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand help; and not __fish_seen_subcommand_from serve worker scan-retries migrate send inspect-dlq replay convert-queues completions man healthcheck help" -f -a "scan-retries" -d 'Re-enqueue due retries, due scheduled notifications and abandoned work (one pass, or --loop)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand help; and not __fish_seen_subcommand_from serve worker scan-retries migrate send inspect-dlq replay convert-queues completions man healthcheck help" -f -a "migrate" -d 'Apply, list or revert database migrations'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand help; and not __fish_seen_subcommand_from serve worker scan-retries migrate send inspect-dlq replay convert-queues completions man healthcheck help" -f -a "send" -d 'Send notifications through the HTTP API (for scripts and CI)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand help; and not __fish_seen_subcommand_from serve worker scan-retries migrate send inspect-dlq replay convert-queues completions man healthcheck help" -f -a "inspect-dlq" -d 'Look into the dead-letter queues without consuming them'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand help; and not __fish_seen_subcommand_from serve worker scan-retries migrate send inspect-dlq replay convert-queues completions man healthcheck help" -f -a "replay" -d 'Put dead letters back on the work queues'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand help; and not __fish_seen_subcommand_from serve worker scan-retries migrate send inspect-dlq replay convert-queues completions man healthcheck help" -f -a "convert-queues" -d 'Move the queues between the classic and the quorum type without losing a message'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand help; and not __fish_seen_subcommand_from serve worker scan-retries migrate send inspect-dlq replay convert-queues completions man healthcheck help" -f -a "completions" -d 'Print a shell completion script'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand help; and not __fish_seen_subcommand_from serve worker scan-retries migrate send inspect-dlq replay convert-queues completions man healthcheck help" -f -a "man" -d 'Write man pages into a directory'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand help; and not __fish_seen_subcommand_from serve worker scan-retries migrate send inspect-dlq replay convert-queues completions man healthcheck help" -f -a "healthcheck" -d 'Exit 0 when an HTTP endpoint answers 200 (container health checks; the image has no curl)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand help; and not __fish_seen_subcommand_from serve worker scan-retries migrate send inspect-dlq replay convert-queues completions man healthcheck help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand help; and __fish_seen_subcommand_from migrate" -f -a "run" -d 'Apply pending migrations (the default)'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand help; and __fish_seen_subcommand_from migrate" -f -a "status" -d 'List applied and pending migrations'
complete -c dispatchctl -n "__fish_dispatchctl_using_subcommand help; and __fish_seen_subcommand_from migrate" -f -a "revert" -d 'Undo the most recently applied migration'
