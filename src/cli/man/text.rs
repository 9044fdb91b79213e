//! The words of the man pages that clap does not hold: each command's longer description
//! and examples, the chat REPL's commands, and the sections every page shares.

/// What one page adds to clap's.
pub struct Page {
    /// Paragraphs of DESCRIPTION after the command's one-line summary.
    pub description: &'static [&'static str],
    /// (command line, what it does), for EXAMPLES.
    pub examples: &'static [(&'static str, &'static str)],
    /// The interactive commands (`chat` only), for INTERACTIVE COMMANDS.
    pub repl: &'static [(&'static str, &'static str)],
}

/// The page called `name` (`continuum-config-validate`). A command without an entry here
/// has a page without examples, which the man page test refuses.
pub fn page(name: &str) -> Page {
    let (description, examples): (&[&str], &[(&str, &str)]) = match name {
        "continuum" => (MAIN, MAIN_EXAMPLES),
        "continuum-serve" => (SERVE, SERVE_EXAMPLES),
        "continuum-config" => (CONFIG, CONFIG_EXAMPLES),
        "continuum-config-generate" => (CONFIG_GENERATE, CONFIG_GENERATE_EXAMPLES),
        "continuum-config-validate" => (CONFIG_VALIDATE, CONFIG_VALIDATE_EXAMPLES),
        "continuum-config-migrate" => (CONFIG_MIGRATE, CONFIG_MIGRATE_EXAMPLES),
        "continuum-health-check" => (HEALTH_CHECK, HEALTH_CHECK_EXAMPLES),
        "continuum-chat" => (CHAT, CHAT_EXAMPLES),
        "continuum-models" => (MODELS, MODELS_EXAMPLES),
        "continuum-models-list" => (MODELS, MODELS_EXAMPLES),
        "continuum-bench" => (BENCH, BENCH_EXAMPLES),
        "continuum-auth" => (AUTH, AUTH_EXAMPLES),
        "continuum-auth-login" => (AUTH_LOGIN, AUTH_LOGIN_EXAMPLES),
        "continuum-auth-status" => (AUTH_STATUS, AUTH_STATUS_EXAMPLES),
        "continuum-auth-logout" => (AUTH_LOGOUT, AUTH_LOGOUT_EXAMPLES),
        "continuum-completions" => (COMPLETIONS, COMPLETIONS_EXAMPLES),
        "continuum-acp" => (ACP, ACP_EXAMPLES),
        "continuum-config-show" => (CONFIG_SHOW, CONFIG_SHOW_EXAMPLES),
        _ => (&[], &[]),
    };
    let repl: &[(&str, &str)] = if name == "continuum-chat" { REPL } else { &[] };
    Page {
        description,
        examples,
        repl,
    }
}

const MAIN: &[&str] = &[
    "Continuum is an LLM API router: one OpenAI-compatible (and Anthropic-compatible) HTTP \
     endpoint in front of your model servers \u{2014} vLLM, llama.cpp's llama-server, LM Studio, \
     LocalAI, Ollama, OpenAI, Anthropic, Gemini, text-embeddings-inference, any \
     OpenAI-compatible server, and a built-in mock backend for trying it without a network or \
     an API key. Backends that fail, hang or restart are routed around: health checks, \
     retries, circuit breakers and fallback models.",
    "continuum serve runs the router. The other commands write and check its configuration, \
     talk to a running router (chat, models list, health-check), load-test an endpoint \
     (bench), and log in to OAuth backends (auth). Without a subcommand, continuum serves the \
     configuration file it finds (--config, CONTINUUM_CONFIG, then the search path in FILES) \
     as continuum serve does, as the original Continuum Router did (continuum --config \
     FILE); when it finds none, it prints where it looked and how to start, and exits 1.",
    "Each command has its own page: continuum-serve(1), continuum-chat(1) and so on (see SEE \
     ALSO).",
];

const MAIN_EXAMPLES: &[(&str, &str)] = &[
    (
        "continuum config generate > config.yaml\ncontinuum serve --config config.yaml",
        "Write a commented configuration (it serves the built-in mock backend) and run the router on 127.0.0.1:8080:",
    ),
    (
        "curl http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json' \\\n  -d '{\"model\":\"mock-model\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}'",
        "Ask it for a chat completion, as any OpenAI client would:",
    ),
    (
        "continuum chat -m mock-model \"Hello, router!\"",
        "The same from the command line, the answer printed as it streams:",
    ),
];

const SERVE: &[&str] = &[
    "Loads the configuration (the first file of the search path in FILES, or --config), \
     applies the environment and the command line over it, starts listening on every \
     address of server.bind_address (host:port or unix:/path), probes every backend once so \
     that /health/ready is right at once, and serves until it is stopped. The OpenAI API is \
     under /v1, the Anthropic Messages API under /v1/messages and /anthropic/v1/messages, \
     Prometheus metrics at /metrics, health at /health and /health/ready, the admin API \
     under /admin.",
    "Priority: command line, then environment, then file, then defaults. Unknown keys in the \
     file are warnings here (errors in continuum config validate).",
    "Signals: SIGTERM or Ctrl-C stops accepting connections, lets requests in flight \
     (streams too) finish for up to server.shutdown_grace, removes its Unix socket files and \
     exits 0. SIGHUP reloads the configuration file, as POST /admin/config/reload does, and \
     a change to the file when hot_reload.enabled is set: a new file that fails validation \
     changes nothing and is reported in the log and in GET /admin/config.",
];

const SERVE_EXAMPLES: &[(&str, &str)] = &[
    (
        "continuum serve --config config.sample.yaml",
        "Serve the sample configuration (the mock backend, no API key needed):",
    ),
    (
        "continuum serve --bind 0.0.0.0:8080 --bind unix:/run/continuum-router/continuum.sock",
        "Listen on every interface and on a Unix socket:",
    ),
    (
        "continuum serve --backends http://127.0.0.1:8000,http://127.0.0.1:8001 --log-format json",
        "Route to two OpenAI-compatible servers without a config file, logging JSON lines:",
    ),
    (
        "kill -HUP \"$(pidof continuum)\"",
        "Reload the configuration file of a running router:",
    ),
];

const CONFIG: &[&str] = &[
    "A configuration is one YAML or TOML file (the same schema). Any string value may hold \
     ${VAR} or ${VAR:-default}, resolved from the environment when the file is loaded. \
     Durations take a unit (\"250ms\", \"30s\", \"5m\", \"24h\", \"7d\"); sizes look like \
     \"32MB\". The sections and their keys are described in the file continuum config \
     generate prints, and in docs/configuration.md.",
];

const CONFIG_EXAMPLES: &[(&str, &str)] = &[
    (
        "continuum config generate > config.yaml",
        "Start from a fully commented configuration:",
    ),
    (
        "continuum config validate --config config.yaml",
        "Check it after an edit:",
    ),
    (
        "continuum config migrate config.yaml",
        "Bring an older configuration up to date:",
    ),
];

const CONFIG_GENERATE: &[&str] = &[
    "Prints a configuration with a comment on every key to standard output. It is valid as \
     printed, with no environment variables set and no referenced files present: it serves \
     the built-in mock backend, and the cloud providers appear commented out. The repository's \
     config.sample.yaml is its output.",
];

const CONFIG_GENERATE_EXAMPLES: &[(&str, &str)] = &[
    (
        "continuum config generate > config.yaml",
        "A commented YAML configuration:",
    ),
    (
        "continuum config generate --minimal --format toml > config.toml",
        "Only the keys a first configuration needs, as TOML:",
    ),
];

const CONFIG_VALIDATE: &[&str] = &[
    "Loads the configuration as continuum serve would (search path, ${VAR} substitution, \
     referenced files such as api_keys_file and prompt files) and prints every problem with \
     its key path, for example backends[2].url: ..., with a \"did you mean\" hint for unknown \
     keys. Exit status 0 when the configuration is valid, 1 when it is not.",
];

const CONFIG_VALIDATE_EXAMPLES: &[(&str, &str)] = &[
    (
        "continuum config validate --config config.yaml",
        "Check a file:",
    ),
    (
        "CONTINUUM_CONFIG=/etc/continuum-router/config.yaml continuum config validate",
        "Check the file a service uses:",
    ),
];

const CONFIG_SHOW: &[&str] = &[
    "Prints the configuration continuum serve would run with \u{2014} the file (or the \
     defaults), then the environment, then serve's own flags, which it takes too \u{2014} as \
     YAML with a comment on each value saying where it came from (the file, a ${VAR} in it, \
     a CONTINUUM_* variable, a flag, or the default). Secrets are redacted as \
     GET /admin/config redacts them. --json prints {file, config, sources}.",
];

const CONFIG_SHOW_EXAMPLES: &[(&str, &str)] = &[
    (
        "continuum config show --config config.yaml",
        "What a file amounts to, with every default filled in:",
    ),
    (
        "CONTINUUM_BIND_ADDRESS=0.0.0.0:9000 continuum config show --port 9100 | grep -A1 bind_address",
        "Which address wins, and why:",
    ),
];

const CONFIG_MIGRATE: &[&str] = &[
    "Rewrites the older forms of a configuration to the current schema: a top-level \
     bind_address (moved into server), a top-level backend_urls list (becomes backends named \
     backend-1, backend-2, ...), durations as bare integers of seconds (interval: 30 becomes \
     \"30s\"), lower-case or snake_case strategy names (round_robin becomes RoundRobin) and \
     renamed keys (health_check becomes health_checks, timeouts.request.*.chunk_timeout \
     becomes chunk_interval, circuit_breaker.reset_timeout becomes timeout).",
    "It prints a unified diff and the list of changes, asks before writing when run on a \
     terminal (not with --yes, nor without a terminal), keeps the old file as FILE.bak, and \
     keeps comments and key order (YAML is edited line by line, TOML through toml_edit). A \
     second run finds nothing to change.",
];

const CONFIG_MIGRATE_EXAMPLES: &[(&str, &str)] = &[
    (
        "continuum config migrate --dry-run config.yaml",
        "See what would change, writing nothing:",
    ),
    (
        "continuum config migrate --yes config.yaml",
        "Rewrite without asking (config.yaml.bak keeps the old file):",
    ),
];

const HEALTH_CHECK: &[&str] = &[
    "GETs the router's health endpoint and exits 0 when it answers 200, 1 otherwise (an \
     error status, no answer within --timeout, nothing listening). Meant for Docker's \
     HEALTHCHECK and other probes that run a command; the router's GET /health answers \
     {\"status\":\"ok\"} while it serves.",
    "--url is the router's root, as for the other client commands (/health is appended); a \
     URL with a path is checked as given. Without --url: CONTINUUM_URL, else the address the \
     configuration in scope listens on (--config, CONTINUUM_CONFIG or the search path; \
     0.0.0.0 is asked at 127.0.0.1), else http://127.0.0.1:8080.",
];

const HEALTH_CHECK_EXAMPLES: &[(&str, &str)] = &[
    (
        "continuum health-check && echo up",
        "Check the router on this machine:",
    ),
    (
        "HEALTHCHECK CMD [\"continuum\", \"health-check\", \"--timeout\", \"3s\"]",
        "In a Dockerfile (the repository's Dockerfile does this):",
    ),
];

const CHAT: &[&str] = &[
    "With a PROMPT, sends it to the model as one chat completion and prints the answer as it \
     streams; PROMPT - reads the prompt from standard input. Without a PROMPT, starts an \
     interactive conversation (see INTERACTIVE COMMANDS). Without --model, the first model \
     the router lists is used.",
    "It talks to a running router at its root URL (a trailing /v1 is accepted), sending the \
     API key of --api-key or CONTINUUM_API_KEY: --url, else CONTINUUM_URL, else the address \
     the configuration in scope listens on (--config, CONTINUUM_CONFIG or the search path), \
     else http://127.0.0.1:8080. With --in-process it starts that configuration's router \
     inside the command instead and talks to its backends directly. Errors are one line on \
     standard error and exit status 1; when nothing listens, the message says so and how \
     to start the router. Output into a pipe that closes early (| head) ends the command \
     quietly, cancelling the answer.",
];

const CHAT_EXAMPLES: &[(&str, &str)] = &[
    (
        "continuum chat -m mock-model \"Hello\"",
        "One question, the answer streamed to standard output:",
    ),
    (
        "git diff | continuum chat -m mock-model --system \"Review this diff.\" -",
        "The prompt from standard input, with a system prompt:",
    ),
    (
        "continuum chat --url http://127.0.0.1:9000 -m llama/smollm2",
        "A conversation with the model smollm2 of the backend named llama, through a router on port 9000:",
    ),
];

/// The chat REPL's commands; `src/cli/repl.rs` implements them.
const REPL: &[(&str, &str)] = &[
    ("/help", "List these commands."),
    ("/exit, /quit", "Leave the conversation (as Ctrl-D does)."),
    (
        "/model <NAME>",
        "Switch to the model NAME; the name is checked against the router's model list at once.",
    ),
    ("/models", "List the models the router serves."),
    (
        "/system <TEXT>",
        "Set the system prompt of the following requests; /system alone removes it.",
    ),
    ("/clear", "Forget the conversation so far (the system prompt stays)."),
    (
        "/set temperature <X>",
        "Send temperature X (a number, e.g. 0.2) with the following requests.",
    ),
    (
        "/set max_tokens <N>",
        "Limit each following answer to N tokens.",
    ),
    (
        "\\",
        "At the end of a line: the input goes on on the next line; the lines are sent as one message.",
    ),
    (
        "Ctrl-C",
        "Cancel the answer being streamed (the request to the backend is cancelled too); the conversation goes on. At the prompt, it clears the line.",
    ),
    ("Ctrl-D", "Leave the conversation."),
];

/// Before the REPL's commands.
pub const REPL_INTRO: &str = "Without a PROMPT, continuum chat reads one message per line \
    and keeps the conversation, so each answer sees the turns before it. The line is edited \
    with the usual keys (arrows, Ctrl-A, Ctrl-E, Ctrl-U, Ctrl-K, Ctrl-W), and earlier lines \
    come back with Up and Ctrl-R. A line starting with / is a command:";

const MODELS: &[&str] = &[
    "continuum models list prints a table of the models a router can route: id, the backends \
     serving it, their health (from GET /admin/backends when the caller may read it, ? \
     otherwise), context window and pricing (from the model metadata). --json prints the \
     router's GET /v1/models answer instead ({\"object\":\"list\",\"data\":[...]}).",
];

const MODELS_EXAMPLES: &[(&str, &str)] = &[
    ("continuum models list", "The table:"),
    (
        "continuum models list --json | jq -r '.data[].id'",
        "Only the ids:",
    ),
];

const BENCH: &[&str] = &[
    "Sends chat completions to an OpenAI-compatible endpoint from --concurrency clients at \
     once, for --requests requests or for --duration, and prints requests, errors, requests \
     per second, latency p50/p90/p99/max, output tokens per second and the status breakdown; \
     with --stream also time to first token and inter-token latency. A progress bar is drawn \
     on standard error while it runs. --rate caps the request rate; --prompt-words and \
     --max-tokens size the requests; --json prints the figures as one JSON object.",
    "--compare URL runs the same load against a second endpoint in alternating rounds and \
     prints both with their ratios. --overhead needs nothing running: it starts a fast \
     backend and a router in the process and reports the router's added latency (through \
     the router minus direct, in the same run).",
];

const BENCH_EXAMPLES: &[(&str, &str)] = &[
    (
        "continuum bench -m mock-model --concurrency 32 --duration 30s --stream",
        "32 concurrent streamed clients for 30 seconds against the router on this machine:",
    ),
    (
        "continuum bench --overhead --concurrency 1 --requests 20000",
        "The router's own added latency, with nothing else running:",
    ),
    (
        "continuum bench --url http://127.0.0.1:8000 --compare http://127.0.0.1:8080 -m smollm2 --json",
        "A backend directly and through the router, in alternating rounds, as JSON:",
    ),
];

const ACP: &[&str] = &[
    "Runs the router as an Agent Client Protocol agent: an editor (Zed's agent_servers, any \
     ACP client) starts it and speaks JSON-RPC 2.0 to it, one message per line, on standard \
     input and output. Prompts go through the same routing, retries, fallback, limits, global \
     prompts and metrics as HTTP requests; no HTTP listener starts, logs go to standard error \
     (or to the --log-file) and standard output carries protocol messages only. continuum \
     --mode stdio is the same.",
    "The model's tool calls (read_file, write_file, run_command, and the tools of the MCP \
     servers the editor names) run through the editor, asking first for the kinds the acp \
     section's permissions say (edit, delete and execute by default). Sessions are kept in \
     memory, or with acp.sessions.storage: persistent in the embedded database so that they \
     can be loaded again after a restart. The process exits 0 when the editor closes its \
     input, 1 when the configuration cannot be used or acp.enabled is false.",
];

const ACP_EXAMPLES: &[(&str, &str)] = &[
    (
        "continuum acp --config ~/.config/continuum-router/config.yaml",
        "What an editor runs (Zed: \"command\": \"continuum\", \"args\": [\"acp\", \"--config\", FILE]):",
    ),
    (
        "continuum --config config.yaml --mode stdio",
        "The original Continuum Router's spelling of the same:",
    ),
];

const AUTH: &[&str] = &[
    "For backends whose auth.type is oauth: log in with the OAuth 2.0 device authorization \
     grant (RFC 8628), show the stored tokens' state, delete them. Tokens are kept in the \
     backend's auth.oauth.token_store (default ~/.config/continuum-router/tokens.json, mode \
     0600); continuum serve sends the access token as Authorization: Bearer and refreshes it \
     a minute before it expires, and picks up a new login without a restart.",
];

const AUTH_EXAMPLES: &[(&str, &str)] = &[
    (
        "continuum auth login --backend hosted",
        "Log in for the backend named hosted:",
    ),
    (
        "continuum auth status",
        "Which backends have a valid token:",
    ),
];

const AUTH_LOGIN: &[&str] = &[
    "Prints the verification URL and the user code (it opens nothing itself), then polls the \
     token endpoint at the interval the server asks for (5 seconds slower after each \
     slow_down) until the login is approved, denied (access_denied) or expired \
     (expired_token). The tokens are written through a temporary file created with mode \
     0600.",
];

const AUTH_LOGIN_EXAMPLES: &[(&str, &str)] = &[(
    "continuum auth login --backend hosted --config /etc/continuum-router/config.yaml",
    "Log in for the backend named hosted of a service's configuration:",
)];

const AUTH_STATUS: &[&str] = &[
    "Shows, for every backend with auth.type oauth, whether a token is stored and when it \
     expires; never the token itself.",
];

const AUTH_STATUS_EXAMPLES: &[(&str, &str)] = &[(
    "continuum auth status",
    "Every OAuth backend's token state:",
)];

const AUTH_LOGOUT: &[&str] = &["Deletes the stored token of one backend."];

const AUTH_LOGOUT_EXAMPLES: &[(&str, &str)] = &[(
    "continuum auth logout --backend hosted",
    "Forget the token of the backend named hosted:",
)];

const COMPLETIONS: &[&str] = &[
    "Prints the completion script of SHELL (bash, zsh, fish, powershell, elvish) to standard \
     output. The repository's completions/ directory holds them, generated. Where each shell \
     looks for them is shown in EXAMPLES.",
];

const COMPLETIONS_EXAMPLES: &[(&str, &str)] = &[
    (
        "continuum completions bash > ~/.local/share/bash-completion/completions/continuum",
        "bash (bash-completion loads it on first use; system-wide: /usr/share/bash-completion/completions/continuum):",
    ),
    (
        "continuum completions zsh > ~/.zfunc/_continuum",
        "zsh (with fpath=(~/.zfunc $fpath) before compinit in ~/.zshrc; system-wide: /usr/local/share/zsh/site-functions/_continuum):",
    ),
    (
        "continuum completions fish > ~/.config/fish/completions/continuum.fish",
        "fish (system-wide: /usr/share/fish/vendor_completions.d/continuum.fish):",
    ),
];

/// EXIT STATUS, on every page (SPEC §1).
pub const EXIT_STATUS: &[(&str, &str)] = &[
    (
        "0",
        "Success: the command did what it was asked (continuum serve: it stopped gracefully; config validate: the configuration is valid; health-check: the router answered 200).",
    ),
    (
        "1",
        "A failure you can fix: a bad configuration, a backend or router that cannot be reached, a failed health check. The message on standard error names the file, key or URL at fault.",
    ),
    (
        "2",
        "A command-line usage error: an unknown option, a missing or malformed argument.",
    ),
];

/// ENVIRONMENT, on every page.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "CONTINUUM_CONFIG",
        "The configuration file, as --config (which wins over it); otherwise the search path in FILES.",
    ),
    (
        "CONTINUUM_BIND_ADDRESS",
        "Addresses to listen on, comma-separated (host:port or unix:/path); replaces server.bind_address. --bind wins over it.",
    ),
    (
        "CONTINUUM_BACKEND_URLS",
        "OpenAI-compatible backend URLs, comma-separated; replaces the configured backends with generic ones named backend-1, backend-2, ... --backends wins over it.",
    ),
    (
        "CONTINUUM_LOG_LEVEL",
        "trace, debug, info, warn or error; replaces logging.level. --log-level wins over it.",
    ),
    (
        "CONTINUUM_URL",
        "The router's root URL for the client commands (chat, models list, bench, health-check), as --url.",
    ),
    (
        "CONTINUUM_API_KEY",
        "The API key the client commands send (Authorization: Bearer), as --api-key.",
    ),
    (
        "RUST_LOG",
        "A log filter (tracing's syntax), used when no level is set by --log-level, CONTINUUM_LOG_LEVEL or logging.level.",
    ),
    (
        "NO_COLOR",
        "When set to anything but the empty string, no colour in the output (https://no-color.org).",
    ),
    (
        "HOME",
        "Where ~ in configuration paths and ~/.config/continuum-router are.",
    ),
    (
        "XDG_DATA_HOME",
        "Where continuum chat keeps its history (continuum/chat_history; default ~/.local/share).",
    ),
];

/// After ENVIRONMENT's list.
pub const SUBSTITUTION: &str = "Any string value in the configuration file may hold \
    ${VAR} or ${VAR:-default}, resolved from the environment when the file is loaded; an \
    unset variable without a default leaves the value unset, which is an error only where \
    the key is required (an openai backend's api_key, say).";

/// FILES, on every page (SPEC §2).
pub const FILES: &[(&str, &str)] = &[
    (
        "./config.yaml, ./config.yml, ./config.toml",
        "The configuration, when neither --config nor CONTINUUM_CONFIG names one: the first file found of this place and the two below, .yaml first at each. With none found, continuum serve applies the built-in defaults (listen on 127.0.0.1:8080; backends Ollama at http://localhost:11434 and LM Studio at http://localhost:1234), and bare continuum says where it looked and how to start. The client commands read the router's address from the same file.",
    ),
    (
        "~/.config/continuum-router/config.yaml (.yml, .toml)",
        "The user's configuration.",
    ),
    (
        "/etc/continuum-router/config.yaml (.yml, .toml)",
        "The system's configuration (the Docker image's and the systemd unit's).",
    ),
    (
        "~/.config/continuum-router/tokens.json",
        "OAuth tokens of continuum auth login (auth.oauth.token_store), mode 0600.",
    ),
    (
        "./data/continuum.redb, ./data/files/",
        "The embedded store (stored Responses, file metadata; store.path) and uploaded files (files.storage_path), relative to the configuration file's directory unless configured otherwise.",
    ),
];

/// After SEE ALSO's list of pages.
pub const SEE_ALSO_DOCS: &str = "The documentation in the source repository: README.md (quick \
    start), docs/configuration.md (every configuration section), docs/operations.md \
    (deploying with Docker or systemd, signals, reload, health, metrics, logs), \
    docs/local-models.md and docs/providers.md.";
