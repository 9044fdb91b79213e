
use builtin;
use str;

set edit:completion:arg-completer[continuum] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'continuum'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'continuum'= {
            cand --color 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never'
            cand --mode 'How bare `continuum` runs: `http` serves (as `continuum serve`); `stdio` is the Agent Client Protocol agent for editors (as `continuum acp`)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand -V 'Print version'
            cand --version 'Print version'
            cand serve 'Run the router'
            cand config 'Generate, validate, migrate or show configuration files'
            cand health-check 'Check a running router''s health endpoint (exit 0 if it answers 200, else 1)'
            cand chat 'Chat with a model: one prompt, or an interactive conversation'
            cand models 'What a router can route'
            cand bench 'Load-test an OpenAI-compatible endpoint (or, with --overhead, the router itself)'
            cand auth 'Log in to OAuth backends (device flow) and manage their stored tokens'
            cand acp 'Run as an Agent Client Protocol agent for editors (Zed and others) on stdin/stdout: no HTTP listener, logs on stderr'
            cand completions 'Print shell completions'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'continuum;serve'= {
            cand -c 'Config file (YAML or TOML). Default: the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)'
            cand --config 'Config file (YAML or TOML). Default: the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)'
            cand --bind 'Address to listen on, "host:port" or "unix:/path" (repeatable; replaces server.bind_address)'
            cand --backends 'Comma-separated OpenAI-compatible backend URLs (replace the configured backends)'
            cand --log-level 'Log level: trace, debug, info, warn, error'
            cand --log-format 'Log format'
            cand --health-check-interval 'Seconds between backend health probes (replaces health_checks.interval)'
            cand --model-metadata 'Model metadata file (replaces model_metadata_file; `~` is expanded)'
            cand --port 'Listen on this port instead, keeping the configured host(s) (for another host too, use --bind HOST:PORT)'
            cand --color 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'continuum;config'= {
            cand --color 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand generate 'Print a fully commented sample configuration (valid as printed)'
            cand validate 'Load, substitute and validate a config; print every problem with its key path'
            cand show 'Print the configuration `serve` would run with (file, environment, command line, defaults) and where each value came from; secrets redacted. Takes `serve`''s flags'
            cand migrate 'Rewrite an outdated config to the current schema (diff, ask, keep FILE.bak)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'continuum;config;generate'= {
            cand --format 'Output format'
            cand --color 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never'
            cand --minimal 'Only the few keys a first config needs'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'continuum;config;validate'= {
            cand -c 'Config file. Default: the search path'
            cand --config 'Config file. Default: the search path'
            cand --color 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'continuum;config;show'= {
            cand -c 'Config file (YAML or TOML). Default: the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)'
            cand --config 'Config file (YAML or TOML). Default: the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)'
            cand --bind 'Address to listen on, "host:port" or "unix:/path" (repeatable; replaces server.bind_address)'
            cand --backends 'Comma-separated OpenAI-compatible backend URLs (replace the configured backends)'
            cand --log-level 'Log level: trace, debug, info, warn, error'
            cand --log-format 'Log format'
            cand --health-check-interval 'Seconds between backend health probes (replaces health_checks.interval)'
            cand --model-metadata 'Model metadata file (replaces model_metadata_file; `~` is expanded)'
            cand --port 'Listen on this port instead, keeping the configured host(s) (for another host too, use --bind HOST:PORT)'
            cand --color 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never'
            cand --json 'Print `{"file", "config", "sources"}` as JSON instead of commented YAML'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'continuum;config;migrate'= {
            cand --color 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never'
            cand --dry-run 'Show the changes; write nothing'
            cand -y 'Write without asking'
            cand --yes 'Write without asking'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'continuum;config;help'= {
            cand generate 'Print a fully commented sample configuration (valid as printed)'
            cand validate 'Load, substitute and validate a config; print every problem with its key path'
            cand show 'Print the configuration `serve` would run with (file, environment, command line, defaults) and where each value came from; secrets redacted. Takes `serve`''s flags'
            cand migrate 'Rewrite an outdated config to the current schema (diff, ask, keep FILE.bak)'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'continuum;config;help;generate'= {
        }
        &'continuum;config;help;validate'= {
        }
        &'continuum;config;help;show'= {
        }
        &'continuum;config;help;migrate'= {
        }
        &'continuum;config;help;help'= {
        }
        &'continuum;health-check'= {
            cand --url 'The router''s root URL (`/health` is checked), or a full health URL. Default: as for the other client commands (CONTINUUM_URL, the config in scope, 127.0.0.1:8080)'
            cand -c 'Config file whose router to check. Default: the search path'
            cand --config 'Config file whose router to check. Default: the search path'
            cand --timeout 'How long to wait for the answer (e.g. 500ms, 3s)'
            cand --color 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'continuum;chat'= {
            cand -m 'Model (default: the first one the router lists)'
            cand --model 'Model (default: the first one the router lists)'
            cand --system 'System prompt'
            cand --url 'The router''s root URL. Default: the address the config in scope listens on (server.bind_address of --config or the search path), else http://127.0.0.1:8080'
            cand --api-key 'API key (sent as Authorization: Bearer)'
            cand -c 'Config file whose router to talk to. Default: CONTINUUM_CONFIG, then the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)'
            cand --config 'Config file whose router to talk to. Default: CONTINUUM_CONFIG, then the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)'
            cand --color 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never'
            cand --in-process 'Start the config''s router inside this command and talk to its backends directly (no running server needed)'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'continuum;models'= {
            cand --color 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand list 'A table of models: id, backends, health, context window, pricing'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'continuum;models;list'= {
            cand --url 'The router''s root URL. Default: the address the config in scope listens on (server.bind_address of --config or the search path), else http://127.0.0.1:8080'
            cand --api-key 'API key (sent as Authorization: Bearer)'
            cand -c 'Config file whose router to talk to. Default: CONTINUUM_CONFIG, then the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)'
            cand --config 'Config file whose router to talk to. Default: CONTINUUM_CONFIG, then the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)'
            cand --color 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never'
            cand --in-process 'Start the config''s router inside this command and talk to its backends directly (no running server needed)'
            cand --json 'Print the `/v1/models` JSON instead of a table'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'continuum;models;help'= {
            cand list 'A table of models: id, backends, health, context window, pricing'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'continuum;models;help;list'= {
        }
        &'continuum;models;help;help'= {
        }
        &'continuum;bench'= {
            cand --url 'The router''s root URL. Default: the address the config in scope listens on (server.bind_address of --config or the search path), else http://127.0.0.1:8080'
            cand --api-key 'API key (sent as Authorization: Bearer)'
            cand --config 'Config file whose router to load-test when --url is not given (no short form: -c is the concurrency here)'
            cand -m 'Model (default: the first one the endpoint lists)'
            cand --model 'Model (default: the first one the endpoint lists)'
            cand -c 'Requests in flight at once (at least 1)'
            cand --concurrency 'Requests in flight at once (at least 1)'
            cand -n 'Requests to send (at least 1); with --compare or --overhead, to each side'
            cand --requests 'Requests to send (at least 1); with --compare or --overhead, to each side'
            cand -d 'Run for this long instead (e.g. 30s, 5m); with --compare or --overhead, each side'
            cand --duration 'Run for this long instead (e.g. 30s, 5m); with --compare or --overhead, each side'
            cand --prompt-words 'Words in each prompt'
            cand --max-tokens 'max_tokens of each request'
            cand --rate 'At most this many requests per second'
            cand --compare 'Also send the same load to this endpoint (B), in alternating rounds, and print B / A'
            cand --color 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never'
            cand --stream 'Streamed requests (only then are time to first token and inter-token latency measured)'
            cand --overhead 'Measure the router''s added latency: the same load to an in-process backend, direct and through an in-process router'
            cand --json 'Print the figures as JSON'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'continuum;auth'= {
            cand --color 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
            cand login 'OAuth 2.0 device authorization (RFC 8628) for a backend with auth.type oauth'
            cand status 'The stored tokens of every OAuth backend'
            cand logout 'Delete a backend''s stored token'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'continuum;auth;login'= {
            cand --backend 'The backend''s name'
            cand -c 'Config file. Default: the search path'
            cand --config 'Config file. Default: the search path'
            cand --color 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'continuum;auth;status'= {
            cand -c 'Config file. Default: the search path'
            cand --config 'Config file. Default: the search path'
            cand --color 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'continuum;auth;logout'= {
            cand --backend 'The backend''s name'
            cand -c 'Config file. Default: the search path'
            cand --config 'Config file. Default: the search path'
            cand --color 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'continuum;auth;help'= {
            cand login 'OAuth 2.0 device authorization (RFC 8628) for a backend with auth.type oauth'
            cand status 'The stored tokens of every OAuth backend'
            cand logout 'Delete a backend''s stored token'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'continuum;auth;help;login'= {
        }
        &'continuum;auth;help;status'= {
        }
        &'continuum;auth;help;logout'= {
        }
        &'continuum;auth;help;help'= {
        }
        &'continuum;acp'= {
            cand -c 'Config file (YAML or TOML). Default: the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)'
            cand --config 'Config file (YAML or TOML). Default: the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/)'
            cand --log-level 'Log level: trace, debug, info, warn, error'
            cand --log-file 'Append logs to this file instead of writing them to stderr'
            cand --color 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'continuum;completions'= {
            cand --color 'Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never'
            cand -h 'Print help (see more with ''--help'')'
            cand --help 'Print help (see more with ''--help'')'
        }
        &'continuum;help'= {
            cand serve 'Run the router'
            cand config 'Generate, validate, migrate or show configuration files'
            cand health-check 'Check a running router''s health endpoint (exit 0 if it answers 200, else 1)'
            cand chat 'Chat with a model: one prompt, or an interactive conversation'
            cand models 'What a router can route'
            cand bench 'Load-test an OpenAI-compatible endpoint (or, with --overhead, the router itself)'
            cand auth 'Log in to OAuth backends (device flow) and manage their stored tokens'
            cand acp 'Run as an Agent Client Protocol agent for editors (Zed and others) on stdin/stdout: no HTTP listener, logs on stderr'
            cand completions 'Print shell completions'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'continuum;help;serve'= {
        }
        &'continuum;help;config'= {
            cand generate 'Print a fully commented sample configuration (valid as printed)'
            cand validate 'Load, substitute and validate a config; print every problem with its key path'
            cand show 'Print the configuration `serve` would run with (file, environment, command line, defaults) and where each value came from; secrets redacted. Takes `serve`''s flags'
            cand migrate 'Rewrite an outdated config to the current schema (diff, ask, keep FILE.bak)'
        }
        &'continuum;help;config;generate'= {
        }
        &'continuum;help;config;validate'= {
        }
        &'continuum;help;config;show'= {
        }
        &'continuum;help;config;migrate'= {
        }
        &'continuum;help;health-check'= {
        }
        &'continuum;help;chat'= {
        }
        &'continuum;help;models'= {
            cand list 'A table of models: id, backends, health, context window, pricing'
        }
        &'continuum;help;models;list'= {
        }
        &'continuum;help;bench'= {
        }
        &'continuum;help;auth'= {
            cand login 'OAuth 2.0 device authorization (RFC 8628) for a backend with auth.type oauth'
            cand status 'The stored tokens of every OAuth backend'
            cand logout 'Delete a backend''s stored token'
        }
        &'continuum;help;auth;login'= {
        }
        &'continuum;help;auth;status'= {
        }
        &'continuum;help;auth;logout'= {
        }
        &'continuum;help;acp'= {
        }
        &'continuum;help;completions'= {
        }
        &'continuum;help;help'= {
        }
    ]
    $completions[$command]
}
