//! `continuum config generate` and `continuum config validate`.

use std::path::PathBuf;
use std::process::ExitCode;

use continuum::config::{self, Format, Overrides, ProcessEnv, Strictness};

use super::output::{out, outln};
use super::SampleFormat;

/// Prints the commented sample.
pub fn generate(format: SampleFormat, minimal: bool) -> ExitCode {
    let format = match format {
        SampleFormat::Yaml => Format::Yaml,
        SampleFormat::Toml => Format::Toml,
    };
    out!("{}", config::sample::sample(format, minimal));
    ExitCode::SUCCESS
}

/// Validates a config: exit 0 and a summary when valid, else every problem and exit 1.
pub fn validate(path: Option<PathBuf>) -> ExitCode {
    match config::load(
        path.as_deref(),
        &Overrides::default(),
        &ProcessEnv,
        Strictness::Validate,
    ) {
        Ok(loaded) => {
            let source = match &loaded.file {
                Some(f) => f.display().to_string(),
                None => "no config file found; the built-in defaults".to_string(),
            };
            for w in &loaded.warnings {
                eprintln!("warning: {source}: {w}");
            }
            outln!(
                "{source}: valid ({} backend(s), listening on {})",
                loaded.config.backends.len(),
                loaded
                    .config
                    .server
                    .bind_address
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            if let Some(hint) = super::hints::outdated_hint(loaded.file.as_deref()) {
                eprintln!("note: {hint}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            super::hints::report_config_error(&e, path.as_deref());
            ExitCode::FAILURE
        }
    }
}

/// `continuum config migrate FILE`: shows the rewrite as a diff, asks (on a terminal,
/// unless `yes`), keeps `FILE.bak`, writes. `dry_run` only shows.
pub fn migrate(file: &std::path::Path, dry_run: bool, yes: bool) -> ExitCode {
    use std::io::IsTerminal;
    let fail = |e: String| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => return fail(format!("{}: {e}", file.display())),
    };
    let format = Format::of_path(file);
    let migration = match config::migrate::migrate(&text, format) {
        Ok(m) => m,
        Err(e) => return fail(format!("{}: {e}", file.display())),
    };
    if migration.changes.is_empty() {
        outln!("{}: already current; nothing to migrate", file.display());
        return ExitCode::SUCCESS;
    }
    let colour = super::output::color_for(std::io::stdout().is_terminal());
    out!("{}", unified_diff(&text, &migration.text, file, colour));
    for c in &migration.changes {
        outln!("  - {c}");
    }
    // The result must load; a problem left (an unrelated one) is said, not hidden.
    if let Err(e) = config::from_text(
        &migration.text,
        format,
        &file.display().to_string(),
        &config::ProcessEnv,
        Strictness::Serve,
    ) {
        eprintln!("warning: the migrated config still has problems:\n{e}");
    }
    if dry_run {
        outln!("(dry run: {} not written)", file.display());
        return ExitCode::SUCCESS;
    }
    if !yes && std::io::stdin().is_terminal() {
        let ok = dialoguer::Confirm::new()
            .with_prompt(format!("Write {}?", file.display()))
            .default(false)
            .interact();
        match ok {
            Ok(true) => {}
            Ok(false) => {
                outln!("not written");
                return ExitCode::SUCCESS;
            }
            Err(e) => return fail(format!("cannot ask: {e}")),
        }
    }
    let mut backup = file.as_os_str().to_owned();
    backup.push(".bak");
    let backup = PathBuf::from(backup);
    if let Err(e) = std::fs::write(&backup, &text) {
        return fail(format!("{}: {e}", backup.display()));
    }
    if let Err(e) = std::fs::write(file, &migration.text) {
        return fail(format!("{}: {e}", file.display()));
    }
    outln!(
        "wrote {} (the old version is in {})",
        file.display(),
        backup.display()
    );
    ExitCode::SUCCESS
}

/// A unified diff of `old` → `new`, coloured for a terminal.
fn unified_diff(old: &str, new: &str, file: &std::path::Path, colour: bool) -> String {
    let name = file.display().to_string();
    let diff = similar::TextDiff::from_lines(old, new);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&name, &format!("{name} (migrated)"))
        .to_string();
    if !colour {
        return text;
    }
    text.lines()
        .map(|l| {
            let code = if l.starts_with("+++") || l.starts_with("---") {
                "1"
            } else if l.starts_with('+') {
                "32"
            } else if l.starts_with('-') {
                "31"
            } else if l.starts_with("@@") {
                "36"
            } else {
                return format!("{l}\n");
            };
            format!("\x1b[{code}m{l}\x1b[0m\n")
        })
        .collect()
}
