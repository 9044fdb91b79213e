# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_continuum_global_optspecs
    string join \n color= mode= h/help V/version
end

function __fish_continuum_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_continuum_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_continuum_using_subcommand
    set -l cmd (__fish_continuum_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c continuum -n "__fish_continuum_needs_command" -l color -d 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t'On a terminal, unless `NO_COLOR` is set (https://no-color.org)'
always\t'Always, even into a pipe or a file'
never\t'Never'"
complete -c continuum -n "__fish_continuum_needs_command" -l mode -d 'How bare `continuum` runs: `http` serves (as `continuum serve`); `stdio` is the Agent Client Protocol agent for editors (as `continuum acp`)' -r -f -a "http\t'The HTTP router'
stdio\t'The ACP agent on stdin/stdout'"
complete -c continuum -n "__fish_continuum_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c continuum -n "__fish_continuum_needs_command" -s V -l version -d 'Print version'
complete -c continuum -n "__fish_continuum_needs_command" -f -a "serve" -d 'Run the router'
complete -c continuum -n "__fish_continuum_needs_command" -f -a "config" -d 'Generate, validate, migrate or show configuration files'
complete -c continuum -n "__fish_continuum_needs_command" -f -a "health-check" -d 'Check a running router\'s health endpoint (exit 0 if it answers 200, else 1)'
complete -c continuum -n "__fish_continuum_needs_command" -f -a "chat" -d 'Chat with a model: one prompt, or an interactive conversation'
complete -c continuum -n "__fish_continuum_needs_command" -f -a "models" -d 'What a router can route'
complete -c continuum -n "__fish_continuum_needs_command" -f -a "bench" -d 'Load-test an OpenAI-compatible endpoint (or, with --overhead, the router itself)'
complete -c continuum -n "__fish_continuum_needs_command" -f -a "auth" -d 'Log in to OAuth backends (device flow) and manage their stored tokens'
complete -c continuum -n "__fish_continuum_needs_command" -f -a "acp" -d 'Run as an Agent Client Protocol agent for editors (Zed and others) on stdin/stdout: no HTTP listener, logs on stderr'
complete -c continuum -n "__fish_continuum_needs_command" -f -a "completions" -d 'Print shell completions'
complete -c continuum -n "__fish_continuum_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c continuum -n "__fish_continuum_using_subcommand serve" -s c -l config -d 'Config file (YAML or TOML). Default: the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)' -r -F
complete -c continuum -n "__fish_continuum_using_subcommand serve" -l bind -d 'Address to listen on, "host:port" or "unix:/path" (repeatable; replaces server.bind_address)' -r
complete -c continuum -n "__fish_continuum_using_subcommand serve" -l backends -d 'Comma-separated OpenAI-compatible backend URLs (replace the configured backends)' -r
complete -c continuum -n "__fish_continuum_using_subcommand serve" -l log-level -d 'Log level: trace, debug, info, warn, error' -r
complete -c continuum -n "__fish_continuum_using_subcommand serve" -l log-format -d 'Log format' -r -f -a "json\t''
pretty\t''"
complete -c continuum -n "__fish_continuum_using_subcommand serve" -l health-check-interval -d 'Seconds between backend health probes (replaces health_checks.interval)' -r
complete -c continuum -n "__fish_continuum_using_subcommand serve" -l model-metadata -d 'Model metadata file (replaces model_metadata_file; `~` is expanded)' -r -F
complete -c continuum -n "__fish_continuum_using_subcommand serve" -l port -d 'Listen on this port instead, keeping the configured host(s) (for another host too, use --bind HOST:PORT)' -r
complete -c continuum -n "__fish_continuum_using_subcommand serve" -l color -d 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t'On a terminal, unless `NO_COLOR` is set (https://no-color.org)'
always\t'Always, even into a pipe or a file'
never\t'Never'"
complete -c continuum -n "__fish_continuum_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c continuum -n "__fish_continuum_using_subcommand config; and not __fish_seen_subcommand_from generate validate show migrate help" -l color -d 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t'On a terminal, unless `NO_COLOR` is set (https://no-color.org)'
always\t'Always, even into a pipe or a file'
never\t'Never'"
complete -c continuum -n "__fish_continuum_using_subcommand config; and not __fish_seen_subcommand_from generate validate show migrate help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c continuum -n "__fish_continuum_using_subcommand config; and not __fish_seen_subcommand_from generate validate show migrate help" -f -a "generate" -d 'Print a fully commented sample configuration (valid as printed)'
complete -c continuum -n "__fish_continuum_using_subcommand config; and not __fish_seen_subcommand_from generate validate show migrate help" -f -a "validate" -d 'Load, substitute and validate a config; print every problem with its key path'
complete -c continuum -n "__fish_continuum_using_subcommand config; and not __fish_seen_subcommand_from generate validate show migrate help" -f -a "show" -d 'Print the configuration `serve` would run with (file, environment, command line, defaults) and where each value came from; secrets redacted. Takes `serve`\'s flags'
complete -c continuum -n "__fish_continuum_using_subcommand config; and not __fish_seen_subcommand_from generate validate show migrate help" -f -a "migrate" -d 'Rewrite an outdated config to the current schema (diff, ask, keep FILE.bak)'
complete -c continuum -n "__fish_continuum_using_subcommand config; and not __fish_seen_subcommand_from generate validate show migrate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from generate" -l format -d 'Output format' -r -f -a "yaml\t'YAML'
toml\t'TOML'"
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from generate" -l color -d 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t'On a terminal, unless `NO_COLOR` is set (https://no-color.org)'
always\t'Always, even into a pipe or a file'
never\t'Never'"
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from generate" -l minimal -d 'Only the few keys a first config needs'
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from generate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from validate" -s c -l config -d 'Config file. Default: the search path' -r -F
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from validate" -l color -d 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t'On a terminal, unless `NO_COLOR` is set (https://no-color.org)'
always\t'Always, even into a pipe or a file'
never\t'Never'"
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from validate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from show" -s c -l config -d 'Config file (YAML or TOML). Default: the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)' -r -F
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from show" -l bind -d 'Address to listen on, "host:port" or "unix:/path" (repeatable; replaces server.bind_address)' -r
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from show" -l backends -d 'Comma-separated OpenAI-compatible backend URLs (replace the configured backends)' -r
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from show" -l log-level -d 'Log level: trace, debug, info, warn, error' -r
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from show" -l log-format -d 'Log format' -r -f -a "json\t''
pretty\t''"
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from show" -l health-check-interval -d 'Seconds between backend health probes (replaces health_checks.interval)' -r
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from show" -l model-metadata -d 'Model metadata file (replaces model_metadata_file; `~` is expanded)' -r -F
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from show" -l port -d 'Listen on this port instead, keeping the configured host(s) (for another host too, use --bind HOST:PORT)' -r
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from show" -l color -d 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t'On a terminal, unless `NO_COLOR` is set (https://no-color.org)'
always\t'Always, even into a pipe or a file'
never\t'Never'"
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from show" -l json -d 'Print `{"file", "config", "sources"}` as JSON instead of commented YAML'
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from migrate" -l color -d 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t'On a terminal, unless `NO_COLOR` is set (https://no-color.org)'
always\t'Always, even into a pipe or a file'
never\t'Never'"
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from migrate" -l dry-run -d 'Show the changes; write nothing'
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from migrate" -s y -l yes -d 'Write without asking'
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from migrate" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "generate" -d 'Print a fully commented sample configuration (valid as printed)'
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "validate" -d 'Load, substitute and validate a config; print every problem with its key path'
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "show" -d 'Print the configuration `serve` would run with (file, environment, command line, defaults) and where each value came from; secrets redacted. Takes `serve`\'s flags'
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "migrate" -d 'Rewrite an outdated config to the current schema (diff, ask, keep FILE.bak)'
complete -c continuum -n "__fish_continuum_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c continuum -n "__fish_continuum_using_subcommand health-check" -l url -d 'The router\'s root URL (`/health` is checked), or a full health URL. Default: as for the other client commands (CONTINUUM_URL, the config in scope, 127.0.0.1:8080)' -r
complete -c continuum -n "__fish_continuum_using_subcommand health-check" -s c -l config -d 'Config file whose router to check. Default: the search path' -r -F
complete -c continuum -n "__fish_continuum_using_subcommand health-check" -l timeout -d 'How long to wait for the answer (e.g. 500ms, 3s)' -r
complete -c continuum -n "__fish_continuum_using_subcommand health-check" -l color -d 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t'On a terminal, unless `NO_COLOR` is set (https://no-color.org)'
always\t'Always, even into a pipe or a file'
never\t'Never'"
complete -c continuum -n "__fish_continuum_using_subcommand health-check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c continuum -n "__fish_continuum_using_subcommand chat" -s m -l model -d 'Model (default: the first one the router lists)' -r
complete -c continuum -n "__fish_continuum_using_subcommand chat" -l system -d 'System prompt' -r
complete -c continuum -n "__fish_continuum_using_subcommand chat" -l url -d 'The router\'s root URL. Default: the address the config in scope listens on (server.bind_address of --config or the search path), else http://127.0.0.1:8080' -r
complete -c continuum -n "__fish_continuum_using_subcommand chat" -l api-key -d 'API key (sent as Authorization: Bearer)' -r
complete -c continuum -n "__fish_continuum_using_subcommand chat" -s c -l config -d 'Config file whose router to talk to. Default: CONTINUUM_CONFIG, then the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)' -r -F
complete -c continuum -n "__fish_continuum_using_subcommand chat" -l color -d 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t'On a terminal, unless `NO_COLOR` is set (https://no-color.org)'
always\t'Always, even into a pipe or a file'
never\t'Never'"
complete -c continuum -n "__fish_continuum_using_subcommand chat" -l in-process -d 'Start the config\'s router inside this command and talk to its backends directly (no running server needed)'
complete -c continuum -n "__fish_continuum_using_subcommand chat" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c continuum -n "__fish_continuum_using_subcommand models; and not __fish_seen_subcommand_from list help" -l color -d 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t'On a terminal, unless `NO_COLOR` is set (https://no-color.org)'
always\t'Always, even into a pipe or a file'
never\t'Never'"
complete -c continuum -n "__fish_continuum_using_subcommand models; and not __fish_seen_subcommand_from list help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c continuum -n "__fish_continuum_using_subcommand models; and not __fish_seen_subcommand_from list help" -f -a "list" -d 'A table of models: id, backends, health, context window, pricing'
complete -c continuum -n "__fish_continuum_using_subcommand models; and not __fish_seen_subcommand_from list help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c continuum -n "__fish_continuum_using_subcommand models; and __fish_seen_subcommand_from list" -l url -d 'The router\'s root URL. Default: the address the config in scope listens on (server.bind_address of --config or the search path), else http://127.0.0.1:8080' -r
complete -c continuum -n "__fish_continuum_using_subcommand models; and __fish_seen_subcommand_from list" -l api-key -d 'API key (sent as Authorization: Bearer)' -r
complete -c continuum -n "__fish_continuum_using_subcommand models; and __fish_seen_subcommand_from list" -s c -l config -d 'Config file whose router to talk to. Default: CONTINUUM_CONFIG, then the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)' -r -F
complete -c continuum -n "__fish_continuum_using_subcommand models; and __fish_seen_subcommand_from list" -l color -d 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t'On a terminal, unless `NO_COLOR` is set (https://no-color.org)'
always\t'Always, even into a pipe or a file'
never\t'Never'"
complete -c continuum -n "__fish_continuum_using_subcommand models; and __fish_seen_subcommand_from list" -l in-process -d 'Start the config\'s router inside this command and talk to its backends directly (no running server needed)'
complete -c continuum -n "__fish_continuum_using_subcommand models; and __fish_seen_subcommand_from list" -l json -d 'Print the `/v1/models` JSON instead of a table'
complete -c continuum -n "__fish_continuum_using_subcommand models; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c continuum -n "__fish_continuum_using_subcommand models; and __fish_seen_subcommand_from help" -f -a "list" -d 'A table of models: id, backends, health, context window, pricing'
complete -c continuum -n "__fish_continuum_using_subcommand models; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c continuum -n "__fish_continuum_using_subcommand bench" -l url -d 'The router\'s root URL. Default: the address the config in scope listens on (server.bind_address of --config or the search path), else http://127.0.0.1:8080' -r
complete -c continuum -n "__fish_continuum_using_subcommand bench" -l api-key -d 'API key (sent as Authorization: Bearer)' -r
complete -c continuum -n "__fish_continuum_using_subcommand bench" -l config -d 'Config file whose router to load-test when --url is not given (no short form: -c is the concurrency here)' -r -F
complete -c continuum -n "__fish_continuum_using_subcommand bench" -s m -l model -d 'Model (default: the first one the endpoint lists)' -r
complete -c continuum -n "__fish_continuum_using_subcommand bench" -s c -l concurrency -d 'Requests in flight at once (at least 1)' -r
complete -c continuum -n "__fish_continuum_using_subcommand bench" -s n -l requests -d 'Requests to send (at least 1); with --compare or --overhead, to each side' -r
complete -c continuum -n "__fish_continuum_using_subcommand bench" -s d -l duration -d 'Run for this long instead (e.g. 30s, 5m); with --compare or --overhead, each side' -r
complete -c continuum -n "__fish_continuum_using_subcommand bench" -l prompt-words -d 'Words in each prompt' -r
complete -c continuum -n "__fish_continuum_using_subcommand bench" -l max-tokens -d 'max_tokens of each request' -r
complete -c continuum -n "__fish_continuum_using_subcommand bench" -l rate -d 'At most this many requests per second' -r
complete -c continuum -n "__fish_continuum_using_subcommand bench" -l compare -d 'Also send the same load to this endpoint (B), in alternating rounds, and print B / A' -r
complete -c continuum -n "__fish_continuum_using_subcommand bench" -l color -d 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t'On a terminal, unless `NO_COLOR` is set (https://no-color.org)'
always\t'Always, even into a pipe or a file'
never\t'Never'"
complete -c continuum -n "__fish_continuum_using_subcommand bench" -l stream -d 'Streamed requests (only then are time to first token and inter-token latency measured)'
complete -c continuum -n "__fish_continuum_using_subcommand bench" -l overhead -d 'Measure the router\'s added latency: the same load to an in-process backend, direct and through an in-process router'
complete -c continuum -n "__fish_continuum_using_subcommand bench" -l json -d 'Print the figures as JSON'
complete -c continuum -n "__fish_continuum_using_subcommand bench" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c continuum -n "__fish_continuum_using_subcommand auth; and not __fish_seen_subcommand_from login status logout help" -l color -d 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t'On a terminal, unless `NO_COLOR` is set (https://no-color.org)'
always\t'Always, even into a pipe or a file'
never\t'Never'"
complete -c continuum -n "__fish_continuum_using_subcommand auth; and not __fish_seen_subcommand_from login status logout help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c continuum -n "__fish_continuum_using_subcommand auth; and not __fish_seen_subcommand_from login status logout help" -f -a "login" -d 'OAuth 2.0 device authorization (RFC 8628) for a backend with auth.type oauth'
complete -c continuum -n "__fish_continuum_using_subcommand auth; and not __fish_seen_subcommand_from login status logout help" -f -a "status" -d 'The stored tokens of every OAuth backend'
complete -c continuum -n "__fish_continuum_using_subcommand auth; and not __fish_seen_subcommand_from login status logout help" -f -a "logout" -d 'Delete a backend\'s stored token'
complete -c continuum -n "__fish_continuum_using_subcommand auth; and not __fish_seen_subcommand_from login status logout help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c continuum -n "__fish_continuum_using_subcommand auth; and __fish_seen_subcommand_from login" -l backend -d 'The backend\'s name' -r
complete -c continuum -n "__fish_continuum_using_subcommand auth; and __fish_seen_subcommand_from login" -s c -l config -d 'Config file. Default: the search path' -r -F
complete -c continuum -n "__fish_continuum_using_subcommand auth; and __fish_seen_subcommand_from login" -l color -d 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t'On a terminal, unless `NO_COLOR` is set (https://no-color.org)'
always\t'Always, even into a pipe or a file'
never\t'Never'"
complete -c continuum -n "__fish_continuum_using_subcommand auth; and __fish_seen_subcommand_from login" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c continuum -n "__fish_continuum_using_subcommand auth; and __fish_seen_subcommand_from status" -s c -l config -d 'Config file. Default: the search path' -r -F
complete -c continuum -n "__fish_continuum_using_subcommand auth; and __fish_seen_subcommand_from status" -l color -d 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t'On a terminal, unless `NO_COLOR` is set (https://no-color.org)'
always\t'Always, even into a pipe or a file'
never\t'Never'"
complete -c continuum -n "__fish_continuum_using_subcommand auth; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c continuum -n "__fish_continuum_using_subcommand auth; and __fish_seen_subcommand_from logout" -l backend -d 'The backend\'s name' -r
complete -c continuum -n "__fish_continuum_using_subcommand auth; and __fish_seen_subcommand_from logout" -s c -l config -d 'Config file. Default: the search path' -r -F
complete -c continuum -n "__fish_continuum_using_subcommand auth; and __fish_seen_subcommand_from logout" -l color -d 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t'On a terminal, unless `NO_COLOR` is set (https://no-color.org)'
always\t'Always, even into a pipe or a file'
never\t'Never'"
complete -c continuum -n "__fish_continuum_using_subcommand auth; and __fish_seen_subcommand_from logout" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c continuum -n "__fish_continuum_using_subcommand auth; and __fish_seen_subcommand_from help" -f -a "login" -d 'OAuth 2.0 device authorization (RFC 8628) for a backend with auth.type oauth'
complete -c continuum -n "__fish_continuum_using_subcommand auth; and __fish_seen_subcommand_from help" -f -a "status" -d 'The stored tokens of every OAuth backend'
complete -c continuum -n "__fish_continuum_using_subcommand auth; and __fish_seen_subcommand_from help" -f -a "logout" -d 'Delete a backend\'s stored token'
complete -c continuum -n "__fish_continuum_using_subcommand auth; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c continuum -n "__fish_continuum_using_subcommand acp" -s c -l config -d 'Config file (YAML or TOML). Default: the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)' -r -F
complete -c continuum -n "__fish_continuum_using_subcommand acp" -l log-level -d 'Log level: trace, debug, info, warn, error' -r
complete -c continuum -n "__fish_continuum_using_subcommand acp" -l log-file -d 'Append logs to this file instead of writing them to stderr' -r -F
complete -c continuum -n "__fish_continuum_using_subcommand acp" -l color -d 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t'On a terminal, unless `NO_COLOR` is set (https://no-color.org)'
always\t'Always, even into a pipe or a file'
never\t'Never'"
complete -c continuum -n "__fish_continuum_using_subcommand acp" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c continuum -n "__fish_continuum_using_subcommand completions" -l color -d 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never' -r -f -a "auto\t'On a terminal, unless `NO_COLOR` is set (https://no-color.org)'
always\t'Always, even into a pipe or a file'
never\t'Never'"
complete -c continuum -n "__fish_continuum_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c continuum -n "__fish_continuum_using_subcommand help; and not __fish_seen_subcommand_from serve config health-check chat models bench auth acp completions help" -f -a "serve" -d 'Run the router'
complete -c continuum -n "__fish_continuum_using_subcommand help; and not __fish_seen_subcommand_from serve config health-check chat models bench auth acp completions help" -f -a "config" -d 'Generate, validate, migrate or show configuration files'
complete -c continuum -n "__fish_continuum_using_subcommand help; and not __fish_seen_subcommand_from serve config health-check chat models bench auth acp completions help" -f -a "health-check" -d 'Check a running router\'s health endpoint (exit 0 if it answers 200, else 1)'
complete -c continuum -n "__fish_continuum_using_subcommand help; and not __fish_seen_subcommand_from serve config health-check chat models bench auth acp completions help" -f -a "chat" -d 'Chat with a model: one prompt, or an interactive conversation'
complete -c continuum -n "__fish_continuum_using_subcommand help; and not __fish_seen_subcommand_from serve config health-check chat models bench auth acp completions help" -f -a "models" -d 'What a router can route'
complete -c continuum -n "__fish_continuum_using_subcommand help; and not __fish_seen_subcommand_from serve config health-check chat models bench auth acp completions help" -f -a "bench" -d 'Load-test an OpenAI-compatible endpoint (or, with --overhead, the router itself)'
complete -c continuum -n "__fish_continuum_using_subcommand help; and not __fish_seen_subcommand_from serve config health-check chat models bench auth acp completions help" -f -a "auth" -d 'Log in to OAuth backends (device flow) and manage their stored tokens'
complete -c continuum -n "__fish_continuum_using_subcommand help; and not __fish_seen_subcommand_from serve config health-check chat models bench auth acp completions help" -f -a "acp" -d 'Run as an Agent Client Protocol agent for editors (Zed and others) on stdin/stdout: no HTTP listener, logs on stderr'
complete -c continuum -n "__fish_continuum_using_subcommand help; and not __fish_seen_subcommand_from serve config health-check chat models bench auth acp completions help" -f -a "completions" -d 'Print shell completions'
complete -c continuum -n "__fish_continuum_using_subcommand help; and not __fish_seen_subcommand_from serve config health-check chat models bench auth acp completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c continuum -n "__fish_continuum_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "generate" -d 'Print a fully commented sample configuration (valid as printed)'
complete -c continuum -n "__fish_continuum_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "validate" -d 'Load, substitute and validate a config; print every problem with its key path'
complete -c continuum -n "__fish_continuum_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "show" -d 'Print the configuration `serve` would run with (file, environment, command line, defaults) and where each value came from; secrets redacted. Takes `serve`\'s flags'
complete -c continuum -n "__fish_continuum_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "migrate" -d 'Rewrite an outdated config to the current schema (diff, ask, keep FILE.bak)'
complete -c continuum -n "__fish_continuum_using_subcommand help; and __fish_seen_subcommand_from models" -f -a "list" -d 'A table of models: id, backends, health, context window, pricing'
complete -c continuum -n "__fish_continuum_using_subcommand help; and __fish_seen_subcommand_from auth" -f -a "login" -d 'OAuth 2.0 device authorization (RFC 8628) for a backend with auth.type oauth'
complete -c continuum -n "__fish_continuum_using_subcommand help; and __fish_seen_subcommand_from auth" -f -a "status" -d 'The stored tokens of every OAuth backend'
complete -c continuum -n "__fish_continuum_using_subcommand help; and __fish_seen_subcommand_from auth" -f -a "logout" -d 'Delete a backend\'s stored token'
