//! Writing to stdout the way a pipe's reader expects: when the reader has gone
//! (`continuum … | head -1`), the command stops at once and exits 0 quietly, as
//! ripgrep does, instead of panicking on a broken pipe. Exiting also closes the
//! command's connections, so a streamed answer nobody reads is cancelled upstream.

use std::io::Write;
use std::sync::OnceLock;

/// `--color`: whether logs and diffs are coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set (https://no-color.org).
    Auto,
    /// Always, even into a pipe or a file.
    Always,
    /// Never.
    Never,
}

static COLOR: OnceLock<ColorChoice> = OnceLock::new();

/// Sets the `--color` choice for the whole command (once, at start).
pub fn set_color(choice: ColorChoice) {
    let _ = COLOR.set(choice);
}

/// Whether output to a stream (a terminal or not) is coloured: `--color always|never`,
/// else on a terminal when `NO_COLOR` is unset or empty.
pub fn color_for(is_terminal: bool) -> bool {
    match COLOR.get().copied().unwrap_or(ColorChoice::Auto) {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// Writes `text` to stdout and flushes it (streamed answers appear as they arrive).
/// A closed pipe ends the process with exit code 0; any other write error ends it
/// with exit code 1 and one line on stderr.
pub fn write_stdout(text: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// `print!` for command output: see [`write_stdout`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write_stdout(format!($($arg)*).as_bytes())
    };
}

/// `println!` for command output: see [`write_stdout`].
macro_rules! outln {
    () => {
        $crate::cli::output::write_stdout(b"\n")
    };
    ($($arg:tt)*) => {{
        let mut line = format!($($arg)*);
        line.push('\n');
        $crate::cli::output::write_stdout(line.as_bytes())
    }};
}

pub(crate) use {out, outln};
