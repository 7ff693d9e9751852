
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
            [CompletionResult]::new('scan-retries', 'scan-retries', [CompletionResultType]::ParameterValue, 'Re-enqueue due retries, due scheduled notifications and abandoned work (one pass, or --loop)')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Apply, list or revert database migrations')
            [CompletionResult]::new('send', 'send', [CompletionResultType]::ParameterValue, 'Send notifications through the HTTP API (for scripts and CI)')
            [CompletionResult]::new('inspect-dlq', 'inspect-dlq', [CompletionResultType]::ParameterValue, 'Look into the dead-letter queues without consuming them')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Put dead letters back on the work queues')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write man pages into a directory')
            [CompletionResult]::new('healthcheck', 'healthcheck', [CompletionResultType]::ParameterValue, 'Exit 0 when an HTTP endpoint answers 200 (container health checks; the image has no curl)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dispatchctl;serve' {
            [CompletionResult]::new('--host', '--host', [CompletionResultType]::ParameterName, 'Address to listen on [env: API_HOST; default 0.0.0.0]')
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Port to listen on [env: API_PORT; default 8080]')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port to listen on [env: API_PORT; default 8080]')
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
            [CompletionResult]::new('--channels', '--channels', [CompletionResultType]::ParameterName, 'Channels to consume (comma-separated); all by default')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'Deliveries in flight [env: WORKER_CONCURRENCY; default 16]')
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
            [CompletionResult]::new('--max-passes', '--max-passes', [CompletionResultType]::ParameterName, 'max-passes')
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format: table (default on a terminal) or json')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format: table (default on a terminal) or json')
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
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format of `status`')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format of `status`')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Apply pending migrations (the default)')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'List applied and pending migrations')
            [CompletionResult]::new('revert', 'revert', [CompletionResultType]::ParameterValue, 'Undo the most recently applied migration')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dispatchctl;migrate;run' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format of `status`')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format of `status`')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;migrate;status' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format of `status`')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format of `status`')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;migrate;revert' {
            [CompletionResult]::new('-o', '-o', [CompletionResultType]::ParameterName, 'Output format of `status`')
            [CompletionResult]::new('--output', '--output', [CompletionResultType]::ParameterName, 'Output format of `status`')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;migrate;help' {
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Apply pending migrations (the default)')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'List applied and pending migrations')
            [CompletionResult]::new('revert', 'revert', [CompletionResultType]::ParameterValue, 'Undo the most recently applied migration')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dispatchctl;migrate;help;run' {
            break
        }
        'dispatchctl;migrate;help;status' {
            break
        }
        'dispatchctl;migrate;help;revert' {
            break
        }
        'dispatchctl;migrate;help;help' {
            break
        }
        'dispatchctl;send' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;inspect-dlq' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;replay' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;completions' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;man' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;healthcheck' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'url')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'YAML file with settings (lower-case names of the environment variables); the environment and flags override it')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'dispatchctl;help' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the HTTP API; by default also the worker and the scanners in the same process')
            [CompletionResult]::new('worker', 'worker', [CompletionResultType]::ParameterValue, 'Consume the channel queues and deliver notifications to the provider')
            [CompletionResult]::new('scan-retries', 'scan-retries', [CompletionResultType]::ParameterValue, 'Re-enqueue due retries, due scheduled notifications and abandoned work (one pass, or --loop)')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Apply, list or revert database migrations')
            [CompletionResult]::new('send', 'send', [CompletionResultType]::ParameterValue, 'Send notifications through the HTTP API (for scripts and CI)')
            [CompletionResult]::new('inspect-dlq', 'inspect-dlq', [CompletionResultType]::ParameterValue, 'Look into the dead-letter queues without consuming them')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Put dead letters back on the work queues')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('man', 'man', [CompletionResultType]::ParameterValue, 'Write man pages into a directory')
            [CompletionResult]::new('healthcheck', 'healthcheck', [CompletionResultType]::ParameterValue, 'Exit 0 when an HTTP endpoint answers 200 (container health checks; the image has no curl)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'dispatchctl;help;serve' {
            break
        }
        'dispatchctl;help;worker' {
            break
        }
        'dispatchctl;help;scan-retries' {
            break
        }
        'dispatchctl;help;migrate' {
            [CompletionResult]::new('run', 'run', [CompletionResultType]::ParameterValue, 'Apply pending migrations (the default)')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'List applied and pending migrations')
            [CompletionResult]::new('revert', 'revert', [CompletionResultType]::ParameterValue, 'Undo the most recently applied migration')
            break
        }
        'dispatchctl;help;migrate;run' {
            break
        }
        'dispatchctl;help;migrate;status' {
            break
        }
        'dispatchctl;help;migrate;revert' {
            break
        }
        'dispatchctl;help;send' {
            break
        }
        'dispatchctl;help;inspect-dlq' {
            break
        }
        'dispatchctl;help;replay' {
            break
        }
        'dispatchctl;help;completions' {
            break
        }
        'dispatchctl;help;man' {
            break
        }
        'dispatchctl;help;healthcheck' {
            break
        }
        'dispatchctl;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
