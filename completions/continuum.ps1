
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'continuum' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'continuum'
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
        'continuum' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never')
            [CompletionResult]::new('--mode', '--mode', [CompletionResultType]::ParameterName, 'How bare `continuum` runs: `http` serves (as `continuum serve`); `stdio` is the Agent Client Protocol agent for editors (as `continuum acp`)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the router')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Generate, validate, migrate or show configuration files')
            [CompletionResult]::new('health-check', 'health-check', [CompletionResultType]::ParameterValue, 'Check a running router''s health endpoint (exit 0 if it answers 200, else 1)')
            [CompletionResult]::new('chat', 'chat', [CompletionResultType]::ParameterValue, 'Chat with a model: one prompt, or an interactive conversation')
            [CompletionResult]::new('models', 'models', [CompletionResultType]::ParameterValue, 'What a router can route')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Load-test an OpenAI-compatible endpoint (or, with --overhead, the router itself)')
            [CompletionResult]::new('auth', 'auth', [CompletionResultType]::ParameterValue, 'Log in to OAuth backends (device flow) and manage their stored tokens')
            [CompletionResult]::new('acp', 'acp', [CompletionResultType]::ParameterValue, 'Run as an Agent Client Protocol agent for editors (Zed and others) on stdin/stdout: no HTTP listener, logs on stderr')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'continuum;serve' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (YAML or TOML). Default: the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (YAML or TOML). Default: the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)')
            [CompletionResult]::new('--bind', '--bind', [CompletionResultType]::ParameterName, 'Address to listen on, "host:port" or "unix:/path" (repeatable; replaces server.bind_address)')
            [CompletionResult]::new('--backends', '--backends', [CompletionResultType]::ParameterName, 'Comma-separated OpenAI-compatible backend URLs (replace the configured backends)')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Log level: trace, debug, info, warn, error')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format')
            [CompletionResult]::new('--health-check-interval', '--health-check-interval', [CompletionResultType]::ParameterName, 'Seconds between backend health probes (replaces health_checks.interval)')
            [CompletionResult]::new('--model-metadata', '--model-metadata', [CompletionResultType]::ParameterName, 'Model metadata file (replaces model_metadata_file; `~` is expanded)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Listen on this port instead, keeping the configured host(s) (for another host too, use --bind HOST:PORT)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'continuum;config' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Print a fully commented sample configuration (valid as printed)')
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Load, substitute and validate a config; print every problem with its key path')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Print the configuration `serve` would run with (file, environment, command line, defaults) and where each value came from; secrets redacted. Takes `serve`''s flags')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Rewrite an outdated config to the current schema (diff, ask, keep FILE.bak)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'continuum;config;generate' {
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'Output format')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never')
            [CompletionResult]::new('--minimal', '--minimal', [CompletionResultType]::ParameterName, 'Only the few keys a first config needs')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'continuum;config;validate' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file. Default: the search path')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file. Default: the search path')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'continuum;config;show' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (YAML or TOML). Default: the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (YAML or TOML). Default: the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)')
            [CompletionResult]::new('--bind', '--bind', [CompletionResultType]::ParameterName, 'Address to listen on, "host:port" or "unix:/path" (repeatable; replaces server.bind_address)')
            [CompletionResult]::new('--backends', '--backends', [CompletionResultType]::ParameterName, 'Comma-separated OpenAI-compatible backend URLs (replace the configured backends)')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Log level: trace, debug, info, warn, error')
            [CompletionResult]::new('--log-format', '--log-format', [CompletionResultType]::ParameterName, 'Log format')
            [CompletionResult]::new('--health-check-interval', '--health-check-interval', [CompletionResultType]::ParameterName, 'Seconds between backend health probes (replaces health_checks.interval)')
            [CompletionResult]::new('--model-metadata', '--model-metadata', [CompletionResultType]::ParameterName, 'Model metadata file (replaces model_metadata_file; `~` is expanded)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Listen on this port instead, keeping the configured host(s) (for another host too, use --bind HOST:PORT)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print `{"file", "config", "sources"}` as JSON instead of commented YAML')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'continuum;config;migrate' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Show the changes; write nothing')
            [CompletionResult]::new('-y', '-y', [CompletionResultType]::ParameterName, 'Write without asking')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Write without asking')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'continuum;config;help' {
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Print a fully commented sample configuration (valid as printed)')
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Load, substitute and validate a config; print every problem with its key path')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Print the configuration `serve` would run with (file, environment, command line, defaults) and where each value came from; secrets redacted. Takes `serve`''s flags')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Rewrite an outdated config to the current schema (diff, ask, keep FILE.bak)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'continuum;config;help;generate' {
            break
        }
        'continuum;config;help;validate' {
            break
        }
        'continuum;config;help;show' {
            break
        }
        'continuum;config;help;migrate' {
            break
        }
        'continuum;config;help;help' {
            break
        }
        'continuum;health-check' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The router''s root URL (`/health` is checked), or a full health URL. Default: as for the other client commands (CONTINUUM_URL, the config in scope, 127.0.0.1:8080)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file whose router to check. Default: the search path')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file whose router to check. Default: the search path')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'How long to wait for the answer (e.g. 500ms, 3s)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'continuum;chat' {
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Model (default: the first one the router lists)')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'Model (default: the first one the router lists)')
            [CompletionResult]::new('--system', '--system', [CompletionResultType]::ParameterName, 'System prompt')
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The router''s root URL. Default: the address the config in scope listens on (server.bind_address of --config or the search path), else http://127.0.0.1:8080')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key (sent as Authorization: Bearer)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file whose router to talk to. Default: CONTINUUM_CONFIG, then the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file whose router to talk to. Default: CONTINUUM_CONFIG, then the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never')
            [CompletionResult]::new('--in-process', '--in-process', [CompletionResultType]::ParameterName, 'Start the config''s router inside this command and talk to its backends directly (no running server needed)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'continuum;models' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'A table of models: id, backends, health, context window, pricing')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'continuum;models;list' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The router''s root URL. Default: the address the config in scope listens on (server.bind_address of --config or the search path), else http://127.0.0.1:8080')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key (sent as Authorization: Bearer)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file whose router to talk to. Default: CONTINUUM_CONFIG, then the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file whose router to talk to. Default: CONTINUUM_CONFIG, then the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never')
            [CompletionResult]::new('--in-process', '--in-process', [CompletionResultType]::ParameterName, 'Start the config''s router inside this command and talk to its backends directly (no running server needed)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the `/v1/models` JSON instead of a table')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'continuum;models;help' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'A table of models: id, backends, health, context window, pricing')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'continuum;models;help;list' {
            break
        }
        'continuum;models;help;help' {
            break
        }
        'continuum;bench' {
            [CompletionResult]::new('--url', '--url', [CompletionResultType]::ParameterName, 'The router''s root URL. Default: the address the config in scope listens on (server.bind_address of --config or the search path), else http://127.0.0.1:8080')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'API key (sent as Authorization: Bearer)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file whose router to load-test when --url is not given (no short form: -c is the concurrency here)')
            [CompletionResult]::new('-m', '-m', [CompletionResultType]::ParameterName, 'Model (default: the first one the endpoint lists)')
            [CompletionResult]::new('--model', '--model', [CompletionResultType]::ParameterName, 'Model (default: the first one the endpoint lists)')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Requests in flight at once (at least 1)')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'Requests in flight at once (at least 1)')
            [CompletionResult]::new('-n', '-n', [CompletionResultType]::ParameterName, 'Requests to send (at least 1); with --compare or --overhead, to each side')
            [CompletionResult]::new('--requests', '--requests', [CompletionResultType]::ParameterName, 'Requests to send (at least 1); with --compare or --overhead, to each side')
            [CompletionResult]::new('-d', '-d', [CompletionResultType]::ParameterName, 'Run for this long instead (e.g. 30s, 5m); with --compare or --overhead, each side')
            [CompletionResult]::new('--duration', '--duration', [CompletionResultType]::ParameterName, 'Run for this long instead (e.g. 30s, 5m); with --compare or --overhead, each side')
            [CompletionResult]::new('--prompt-words', '--prompt-words', [CompletionResultType]::ParameterName, 'Words in each prompt')
            [CompletionResult]::new('--max-tokens', '--max-tokens', [CompletionResultType]::ParameterName, 'max_tokens of each request')
            [CompletionResult]::new('--rate', '--rate', [CompletionResultType]::ParameterName, 'At most this many requests per second')
            [CompletionResult]::new('--compare', '--compare', [CompletionResultType]::ParameterName, 'Also send the same load to this endpoint (B), in alternating rounds, and print B / A')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never')
            [CompletionResult]::new('--stream', '--stream', [CompletionResultType]::ParameterName, 'Streamed requests (only then are time to first token and inter-token latency measured)')
            [CompletionResult]::new('--overhead', '--overhead', [CompletionResultType]::ParameterName, 'Measure the router''s added latency: the same load to an in-process backend, direct and through an in-process router')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the figures as JSON')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'continuum;auth' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'OAuth 2.0 device authorization (RFC 8628) for a backend with auth.type oauth')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'The stored tokens of every OAuth backend')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'Delete a backend''s stored token')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'continuum;auth;login' {
            [CompletionResult]::new('--backend', '--backend', [CompletionResultType]::ParameterName, 'The backend''s name')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file. Default: the search path')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file. Default: the search path')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'continuum;auth;status' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file. Default: the search path')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file. Default: the search path')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'continuum;auth;logout' {
            [CompletionResult]::new('--backend', '--backend', [CompletionResultType]::ParameterName, 'The backend''s name')
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file. Default: the search path')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file. Default: the search path')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'continuum;auth;help' {
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'OAuth 2.0 device authorization (RFC 8628) for a backend with auth.type oauth')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'The stored tokens of every OAuth backend')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'Delete a backend''s stored token')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'continuum;auth;help;login' {
            break
        }
        'continuum;auth;help;status' {
            break
        }
        'continuum;auth;help;logout' {
            break
        }
        'continuum;auth;help;help' {
            break
        }
        'continuum;acp' {
            [CompletionResult]::new('-c', '-c', [CompletionResultType]::ParameterName, 'Config file (YAML or TOML). Default: the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Config file (YAML or TOML). Default: the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)')
            [CompletionResult]::new('--log-level', '--log-level', [CompletionResultType]::ParameterName, 'Log level: trace, debug, info, warn, error')
            [CompletionResult]::new('--log-file', '--log-file', [CompletionResultType]::ParameterName, 'Append logs to this file instead of writing them to stderr')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'continuum;completions' {
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            break
        }
        'continuum;help' {
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Run the router')
            [CompletionResult]::new('config', 'config', [CompletionResultType]::ParameterValue, 'Generate, validate, migrate or show configuration files')
            [CompletionResult]::new('health-check', 'health-check', [CompletionResultType]::ParameterValue, 'Check a running router''s health endpoint (exit 0 if it answers 200, else 1)')
            [CompletionResult]::new('chat', 'chat', [CompletionResultType]::ParameterValue, 'Chat with a model: one prompt, or an interactive conversation')
            [CompletionResult]::new('models', 'models', [CompletionResultType]::ParameterValue, 'What a router can route')
            [CompletionResult]::new('bench', 'bench', [CompletionResultType]::ParameterValue, 'Load-test an OpenAI-compatible endpoint (or, with --overhead, the router itself)')
            [CompletionResult]::new('auth', 'auth', [CompletionResultType]::ParameterValue, 'Log in to OAuth backends (device flow) and manage their stored tokens')
            [CompletionResult]::new('acp', 'acp', [CompletionResultType]::ParameterValue, 'Run as an Agent Client Protocol agent for editors (Zed and others) on stdin/stdout: no HTTP listener, logs on stderr')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print shell completions')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'continuum;help;serve' {
            break
        }
        'continuum;help;config' {
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Print a fully commented sample configuration (valid as printed)')
            [CompletionResult]::new('validate', 'validate', [CompletionResultType]::ParameterValue, 'Load, substitute and validate a config; print every problem with its key path')
            [CompletionResult]::new('show', 'show', [CompletionResultType]::ParameterValue, 'Print the configuration `serve` would run with (file, environment, command line, defaults) and where each value came from; secrets redacted. Takes `serve`''s flags')
            [CompletionResult]::new('migrate', 'migrate', [CompletionResultType]::ParameterValue, 'Rewrite an outdated config to the current schema (diff, ask, keep FILE.bak)')
            break
        }
        'continuum;help;config;generate' {
            break
        }
        'continuum;help;config;validate' {
            break
        }
        'continuum;help;config;show' {
            break
        }
        'continuum;help;config;migrate' {
            break
        }
        'continuum;help;health-check' {
            break
        }
        'continuum;help;chat' {
            break
        }
        'continuum;help;models' {
            [CompletionResult]::new('list', 'list', [CompletionResultType]::ParameterValue, 'A table of models: id, backends, health, context window, pricing')
            break
        }
        'continuum;help;models;list' {
            break
        }
        'continuum;help;bench' {
            break
        }
        'continuum;help;auth' {
            [CompletionResult]::new('login', 'login', [CompletionResultType]::ParameterValue, 'OAuth 2.0 device authorization (RFC 8628) for a backend with auth.type oauth')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'The stored tokens of every OAuth backend')
            [CompletionResult]::new('logout', 'logout', [CompletionResultType]::ParameterValue, 'Delete a backend''s stored token')
            break
        }
        'continuum;help;auth;login' {
            break
        }
        'continuum;help;auth;status' {
            break
        }
        'continuum;help;auth;logout' {
            break
        }
        'continuum;help;acp' {
            break
        }
        'continuum;help;completions' {
            break
        }
        'continuum;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
