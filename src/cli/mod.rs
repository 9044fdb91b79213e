//! Command-line types (clap derive) and the dispatch from a parsed command to its code.
//! Commands return an exit code: 0 success, 1 a failure the user can fix; clap itself
//! exits 2 on usage errors.

mod acp;
mod auth;
mod bench;
mod chat;
mod config_cmd;
mod config_show;
mod health_check;
mod hints;
mod man;
mod models;
mod output;
mod repl;
mod serve;
mod target;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

/// What `continuum --version` prints after the name: the version, the git commit it was
/// built from and the build date (set by build.rs). `-V` prints the version alone.
const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("CONTINUUM_GIT_COMMIT"),
    ", built ",
    env!("CONTINUUM_BUILD_DATE"),
    ")"
);

/// Continuum: one fast OpenAI-compatible endpoint in front of all your LLM backends.
#[derive(Debug, Parser)]
#[command(
    name = "continuum",
    version,
    long_version = LONG_VERSION,
    about,
    args_conflicts_with_subcommands = true,
    after_help = "Without a subcommand, `continuum` serves the config file it finds (--config, \
CONTINUUM_CONFIG, then ./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/) as \
`continuum serve` does; when there is none, it prints where it looked and how to start, and exits 1."
)]
pub struct Cli {
    /// What to do. Without a subcommand, `continuum` serves the config file it finds
    /// (`--config`, CONTINUUM_CONFIG, then the search path) as `continuum serve` does; when
    /// there is none it prints where it looked and how to start, and exits 1.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Colour in logs and diffs: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t = output::ColorChoice::Auto, value_name = "WHEN")]
    pub color: output::ColorChoice,

    /// How bare `continuum` runs: `http` serves (as `continuum serve`); `stdio` is the
    /// Agent Client Protocol agent for editors (as `continuum acp`).
    #[arg(long, value_enum, value_name = "MODE")]
    pub mode: Option<Mode>,

    #[command(flatten)]
    pub legacy: LegacyArgs,
}

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// The HTTP router.
    Http,
    /// The ACP agent on stdin/stdout.
    Stdio,
}

/// The original Continuum Router's top-level flags, kept as hidden aliases.
#[derive(Debug, Args)]
pub struct LegacyArgs {
    /// Config file (serve with it).
    #[arg(long, hide = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print a sample config (as `config generate`).
    #[arg(long, hide = true)]
    pub generate_config: bool,
    /// Check a running router's health (as `health-check`).
    #[arg(long, hide = true)]
    pub health_check: bool,
    /// URL for `--health-check`.
    #[arg(long, hide = true, value_name = "URL")]
    pub health_check_url: Option<String>,
    /// Address to listen on.
    #[arg(long, hide = true, value_name = "ADDR")]
    pub bind: Vec<String>,
    /// Backend URLs, comma-separated.
    #[arg(long, hide = true, value_name = "URLS")]
    pub backends: Vec<String>,
    /// Log level.
    #[arg(long, hide = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log format.
    #[arg(long, hide = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Seconds between health probes.
    #[arg(long, hide = true, value_name = "SECS")]
    pub health_check_interval: Option<u64>,
    /// Model metadata file.
    #[arg(long, hide = true, value_name = "FILE")]
    pub model_metadata: Option<PathBuf>,
    /// Migrate a config file (as `config migrate`).
    #[arg(long, hide = true, value_name = "FILE")]
    pub migrate_config_file: Option<PathBuf>,
    /// With --migrate-config-file: show the changes only.
    #[arg(long, hide = true)]
    pub dry_run: bool,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the router.
    Serve(ServeArgs),
    /// Generate, validate, migrate or show configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Check a running router's health endpoint (exit 0 if it answers 200, else 1).
    HealthCheck(HealthCheckArgs),
    /// Chat with a model: one prompt, or an interactive conversation.
    Chat(ChatArgs),
    /// What a router can route.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Load-test an OpenAI-compatible endpoint (or, with --overhead, the router itself).
    Bench(BenchArgs),
    /// Log in to OAuth backends (device flow) and manage their stored tokens.
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Run as an Agent Client Protocol agent for editors (Zed and others) on stdin/stdout:
    /// no HTTP listener, logs on stderr.
    Acp(AcpArgs),
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into a directory.
    #[command(hide = true)]
    Man {
        /// Write `continuum.1` and `continuum-<command>.1` pages here.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// Arguments of `continuum serve`.
#[derive(Debug, Args, Default)]
pub struct ServeArgs {
    /// Config file (YAML or TOML). Default: the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/).
    #[arg(long, short = 'c', value_name = "FILE", env = "CONTINUUM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on, "host:port" or "unix:/path" (repeatable; replaces server.bind_address).
    #[arg(long, value_name = "ADDR")]
    pub bind: Vec<String>,
    /// Comma-separated OpenAI-compatible backend URLs (replace the configured backends).
    #[arg(long, value_name = "URLS")]
    pub backends: Vec<String>,
    /// Log level: trace, debug, info, warn, error.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Log format.
    #[arg(long, value_name = "FORMAT", value_parser = ["json", "pretty"])]
    pub log_format: Option<String>,
    /// Seconds between backend health probes (replaces health_checks.interval).
    #[arg(long, value_name = "SECS")]
    pub health_check_interval: Option<u64>,
    /// Model metadata file (replaces model_metadata_file; `~` is expanded).
    #[arg(long, value_name = "FILE")]
    pub model_metadata: Option<PathBuf>,
    /// Listen on this port instead, keeping the configured host(s) (for another host
    /// too, use --bind HOST:PORT).
    #[arg(long, value_name = "PORT", conflicts_with = "bind")]
    pub port: Option<u16>,
}

/// Arguments of `continuum acp`.
#[derive(Debug, Args, Default)]
pub struct AcpArgs {
    /// Config file (YAML or TOML). Default: the search path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/).
    #[arg(long, short = 'c', value_name = "FILE", env = "CONTINUUM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log level: trace, debug, info, warn, error.
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Append logs to this file instead of writing them to stderr.
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
}

/// `continuum config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a fully commented sample configuration (valid as printed).
    Generate {
        /// Only the few keys a first config needs.
        #[arg(long)]
        minimal: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = SampleFormat::Yaml)]
        format: SampleFormat,
    },
    /// Load, substitute and validate a config; print every problem with its key path.
    Validate {
        /// Config file. Default: the search path.
        #[arg(long, short = 'c', value_name = "FILE", env = "CONTINUUM_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print the configuration `serve` would run with (file, environment, command line,
    /// defaults) and where each value came from; secrets redacted. Takes `serve`'s flags.
    Show {
        #[command(flatten)]
        serve: ServeArgs,
        /// Print `{"file", "config", "sources"}` as JSON instead of commented YAML.
        #[arg(long)]
        json: bool,
    },
    /// Rewrite an outdated config to the current schema (diff, ask, keep FILE.bak).
    Migrate {
        /// The config file (YAML or TOML).
        file: PathBuf,
        /// Show the changes; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write without asking.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// Formats `config generate` can print.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SampleFormat {
    /// YAML.
    Yaml,
    /// TOML.
    Toml,
}

/// The running router a client command talks to.
#[derive(Debug, Args, Clone)]
pub struct RemoteArgs {
    /// The router's root URL. Default: the address the config in scope listens on
    /// (server.bind_address of --config or the search path), else http://127.0.0.1:8080.
    #[arg(long, value_name = "URL", env = "CONTINUUM_URL")]
    pub url: Option<String>,
    /// API key (sent as Authorization: Bearer).
    #[arg(
        long,
        value_name = "KEY",
        env = "CONTINUUM_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<String>,
}

/// Where a client command sends its requests: a running router, or a config's backends.
#[derive(Debug, Args, Clone)]
pub struct EndpointArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Config file whose router to talk to. Default: CONTINUUM_CONFIG, then the search
    /// path (./config.yaml, ~/.config/continuum-router/, /etc/continuum-router/).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Start the config's router inside this command and talk to its backends directly
    /// (no running server needed).
    #[arg(long, conflicts_with = "url")]
    pub in_process: bool,
}

/// Arguments of `continuum chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Model (default: the first one the router lists).
    #[arg(long, short = 'm', value_name = "MODEL")]
    pub model: Option<String>,
    /// System prompt.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    /// The prompt (`-` reads it from stdin); without it, an interactive conversation.
    pub prompt: Option<String>,
}

/// Arguments of `continuum bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Config file whose router to load-test when --url is not given (no short form:
    /// -c is the concurrency here).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Model (default: the first one the endpoint lists).
    #[arg(long, short = 'm', value_name = "MODEL")]
    pub model: Option<String>,
    /// Requests in flight at once (at least 1).
    #[arg(long, short = 'c', value_name = "N", default_value_t = 8, value_parser = parse_concurrency)]
    pub concurrency: u64,
    /// Requests to send (at least 1); with --compare or --overhead, to each side.
    #[arg(
        long,
        short = 'n',
        value_name = "N",
        default_value_t = 200,
        conflicts_with = "duration",
        value_parser = parse_at_least_one
    )]
    pub requests: u64,
    /// Run for this long instead (e.g. 30s, 5m); with --compare or --overhead, each side.
    #[arg(long, short = 'd', value_name = "DURATION", value_parser = parse_positive_duration)]
    pub duration: Option<std::time::Duration>,
    /// Streamed requests (only then are time to first token and inter-token latency measured).
    #[arg(long)]
    pub stream: bool,
    /// Words in each prompt.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub prompt_words: usize,
    /// max_tokens of each request.
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u32>,
    /// At most this many requests per second.
    #[arg(long, value_name = "REQ_PER_SEC")]
    pub rate: Option<f64>,
    /// Also send the same load to this endpoint (B), in alternating rounds, and print B / A.
    #[arg(long, value_name = "URL", conflicts_with = "overhead")]
    pub compare: Option<String>,
    /// Measure the router's added latency: the same load to an in-process backend, direct and through an in-process router.
    #[arg(long)]
    pub overhead: bool,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `continuum auth …`.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// OAuth 2.0 device authorization (RFC 8628) for a backend with auth.type oauth.
    Login {
        /// The backend's name.
        #[arg(long, value_name = "NAME")]
        backend: String,
        /// Config file. Default: the search path.
        #[arg(long, short = 'c', value_name = "FILE", env = "CONTINUUM_CONFIG")]
        config: Option<PathBuf>,
    },
    /// The stored tokens of every OAuth backend.
    Status {
        /// Config file. Default: the search path.
        #[arg(long, short = 'c', value_name = "FILE", env = "CONTINUUM_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Delete a backend's stored token.
    Logout {
        /// The backend's name.
        #[arg(long, value_name = "NAME")]
        backend: String,
        /// Config file. Default: the search path.
        #[arg(long, short = 'c', value_name = "FILE", env = "CONTINUUM_CONFIG")]
        config: Option<PathBuf>,
    },
}

/// `continuum models …`.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// A table of models: id, backends, health, context window, pricing.
    List(ModelsListArgs),
}

/// Arguments of `continuum models list`.
#[derive(Debug, Args)]
pub struct ModelsListArgs {
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    /// Print the `/v1/models` JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `continuum health-check`.
#[derive(Debug, Args)]
pub struct HealthCheckArgs {
    /// The router's root URL (`/health` is checked), or a full health URL. Default: as
    /// for the other client commands (CONTINUUM_URL, the config in scope, 127.0.0.1:8080).
    #[arg(long, value_name = "URL", env = "CONTINUUM_URL")]
    pub url: Option<String>,
    /// Config file whose router to check. Default: the search path.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// How long to wait for the answer (e.g. 500ms, 3s).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    continuum::config::types::parse_duration(s)
}

/// A count of 1 or more (`bench -n 0` or `-c 0` would measure nothing).
fn parse_at_least_one(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{s}' is not a whole number")),
    }
}

/// `bench -c`: the concurrency. Every other command's `-c` is `--config`, so a value that
/// is no number (`bench -c config.yaml`) is told where a config file goes here.
fn parse_concurrency(s: &str) -> Result<u64, String> {
    parse_at_least_one(s).map_err(|e| {
        if s.trim().parse::<f64>().is_ok() {
            e
        } else {
            format!("{e} (bench's -c is the concurrency; pass a config file as --config {s})")
        }
    })
}

/// A duration longer than zero (`bench -d 0s` would measure nothing).
fn parse_positive_duration(s: &str) -> Result<std::time::Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be longer than 0".to_string()),
        d => Ok(d),
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    output::set_color(cli.color);
    let legacy = cli.legacy;
    match cli.command {
        Some(Command::Serve(args)) => serve::run(args),
        Some(Command::Config(ConfigCommand::Generate { minimal, format })) => {
            config_cmd::generate(format, minimal)
        }
        Some(Command::Config(ConfigCommand::Validate { config })) => config_cmd::validate(config),
        Some(Command::Config(ConfigCommand::Show { serve, json })) => {
            config_show::show(serve, json)
        }
        Some(Command::Config(ConfigCommand::Migrate { file, dry_run, yes })) => {
            config_cmd::migrate(&file, dry_run, yes)
        }
        Some(Command::HealthCheck(args)) => health_check::run_args(&args),
        Some(Command::Chat(args)) => chat::run(args),
        Some(Command::Models(ModelsCommand::List(args))) => models::list(args),
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::Auth(command)) => auth::run(command),
        Some(Command::Acp(args)) => acp::run(args),
        Some(Command::Completions { shell }) => {
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut visible_only(&Cli::command()),
                "continuum",
                &mut script,
            );
            output::write_stdout(&script);
            ExitCode::SUCCESS
        }
        Some(Command::Man { out_dir: Some(dir) }) => match man::write_pages(&dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
        Some(Command::Man { out_dir: None }) => match man::main_page() {
            Ok(page) => {
                output::write_stdout(&page);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot write the man page: {e}");
                ExitCode::FAILURE
            }
        },
        None if cli.mode == Some(Mode::Stdio) => acp::run(AcpArgs {
            config: legacy
                .config
                .or_else(|| std::env::var_os("CONTINUUM_CONFIG").map(PathBuf::from)),
            log_level: legacy.log_level,
            log_file: None,
        }),
        None if legacy.generate_config => config_cmd::generate(SampleFormat::Yaml, false),
        None if legacy.migrate_config_file.is_some() => config_cmd::migrate(
            legacy
                .migrate_config_file
                .as_deref()
                .unwrap_or(std::path::Path::new("")),
            legacy.dry_run,
            false,
        ),
        None if legacy.health_check || legacy.health_check_url.is_some() => health_check::run(
            legacy
                .health_check_url
                .as_deref()
                .unwrap_or(health_check::DEFAULT_URL),
            health_check::DEFAULT_TIMEOUT,
        ),
        None if legacy.config.is_none()
            && legacy.bind.is_empty()
            && legacy.backends.is_empty()
            && no_config_in_scope() =>
        {
            print_how_to_start();
            ExitCode::FAILURE
        }
        None => serve::run(ServeArgs {
            config: legacy
                .config
                .or_else(|| std::env::var_os("CONTINUUM_CONFIG").map(PathBuf::from)),
            bind: legacy.bind,
            backends: legacy.backends,
            log_level: legacy.log_level,
            log_format: legacy.log_format,
            health_check_interval: legacy.health_check_interval,
            model_metadata: legacy.model_metadata,
            port: None,
        }),
    }
}

/// `cmd` without its hidden arguments and subcommands (the original's legacy flags, `man`),
/// for shell completions: clap_complete would offer them otherwise.
fn visible_only(cmd: &clap::Command) -> clap::Command {
    let mut out = clap::Command::new(cmd.get_name().to_string());
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    if let Some(version) = cmd.get_version() {
        out = out.version(version.to_string());
    }
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        out = out.arg(arg.clone());
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        out = out.subcommand(visible_only(sub));
    }
    out
}

/// No config file is in scope for bare `continuum` (nor backends from the environment).
fn no_config_in_scope() -> bool {
    use continuum::config::{self, EnvSource, ProcessEnv};
    config::find_config_file(None, &ProcessEnv).is_none()
        && ProcessEnv
            .var("CONTINUUM_BACKEND_URLS")
            .is_none_or(|v| v.trim().is_empty())
}

/// What bare `continuum` prints when it finds no config: where it looked, how to start.
fn print_how_to_start() {
    use continuum::config::{self, ProcessEnv};
    let mut text = String::from("continuum: no config file found; looked for:\n");
    for path in config::search_path(&ProcessEnv) {
        text.push_str(&format!("  {}\n", path.display()));
    }
    text.push_str(
        "To start, write a config and serve it:\n  \
         continuum config generate > config.yaml   # a commented sample: edit its backends\n  \
         continuum serve                           # serves ./config.yaml (or --config FILE)\n\
         To serve the built-in defaults (Ollama at localhost:11434, LM Studio at \
         localhost:1234) anyway: continuum serve\n",
    );
    eprint!("{text}");
}
