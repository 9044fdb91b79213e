//! Man pages: clap_mangen renders what clap knows (synopsis, options, subcommands); this
//! module adds what a man page needs and clap does not: a longer DESCRIPTION, the chat
//! REPL's commands, EXIT STATUS, ENVIRONMENT, FILES, EXAMPLES and SEE ALSO. The pages are
//! committed under `man/` (`continuum man --out-dir man`); a test keeps them current.

use std::path::Path;

use clap::CommandFactory;
use clap_mangen::roff::{bold, italic, roman, Inline, Roff};
use clap_mangen::Man;

use super::Cli;

mod text;

/// Writes `continuum.1` and one page per visible subcommand (nested ones as
/// `continuum-config-validate.1`) into `dir`.
pub fn write_pages(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let cli = command();
    let pages = page_names(&cli, "continuum");
    write_tree(&cli, "continuum", dir, &pages)
}

/// The page of `continuum` itself.
pub fn main_page() -> std::io::Result<Vec<u8>> {
    let cli = command();
    let pages = page_names(&cli, "continuum");
    render(&cli, "continuum", &pages)
}

/// The command tree as the pages show it: built (so subcommands know their full names),
/// without `--version`'s long form, whose commit and date would make every build's pages
/// differ (the plain version is in VERSION).
fn command() -> clap::Command {
    let mut cli = Cli::command().long_version(None::<&'static str>);
    cli.build();
    cli
}

/// The visible commands' page names, `continuum` first, in tree order.
fn page_names(cmd: &clap::Command, name: &str) -> Vec<String> {
    let mut names = vec![name.to_string()];
    for sub in visible_subcommands(cmd) {
        names.extend(page_names(sub, &format!("{name}-{}", sub.get_name())));
    }
    names
}

fn visible_subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
}

fn write_tree(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    pages: &[String],
) -> std::io::Result<()> {
    std::fs::write(dir.join(format!("{name}.1")), render(cmd, name, pages)?)?;
    for sub in visible_subcommands(cmd) {
        write_tree(sub, &format!("{name}-{}", sub.get_name()), dir, pages)?;
    }
    Ok(())
}

/// One page: clap_mangen's sections, then this module's.
fn render(cmd: &clap::Command, name: &str, pages: &[String]) -> std::io::Result<Vec<u8>> {
    let page = text::page(name);
    let mut cmd = cmd.clone().name(name.to_string());
    if let Some(about) = cmd.get_about().map(|a| a.to_string()) {
        let mut long = about;
        for paragraph in page.description {
            long.push_str("\n\n");
            long.push_str(paragraph);
        }
        cmd = cmd.long_about(long);
    }
    let man = Man::new(cmd.clone()).source(format!("continuum {}", env!("CARGO_PKG_VERSION")));
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut part = |f: &dyn Fn(&mut Vec<u8>) -> std::io::Result<()>| -> std::io::Result<()> {
        let mut buf = Vec::new();
        f(&mut buf)?;
        parts.push(buf);
        Ok(())
    };
    part(&|w| man.render_title(w))?;
    part(&|w| man.render_name_section(w))?;
    part(&|w| man.render_synopsis_section(w))?;
    part(&|w| man.render_description_section(w))?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        part(&|w| man.render_options_section(w))?;
    }
    if visible_subcommands(&cmd).next().is_some() {
        part(&|w| man.render_subcommands_section(w))?;
    }
    part(&|w| extra_sections(&page, name, pages).to_writer(w))?;
    if cmd.get_version().is_some() {
        part(&|w| man.render_version_section(w))?;
    }
    Ok(join(parts))
}

/// Joins separately rendered sections, keeping the roff preamble (a definition of the
/// apostrophe) of the first only.
fn join(parts: Vec<Vec<u8>>) -> Vec<u8> {
    let preamble = Roff::new().render().into_bytes();
    let mut out = Vec::new();
    for (i, part) in parts.into_iter().enumerate() {
        match part.strip_prefix(preamble.as_slice()) {
            Some(rest) if i > 0 => out.extend_from_slice(rest),
            _ => out.extend_from_slice(&part),
        }
    }
    out
}

/// The sections after OPTIONS and SUBCOMMANDS, in the order man-pages(7) gives.
fn extra_sections(page: &text::Page, name: &str, pages: &[String]) -> Roff {
    let mut roff = Roff::new();
    if !page.repl.is_empty() {
        roff.control("SH", ["INTERACTIVE COMMANDS"]);
        paragraph(&mut roff, text::REPL_INTRO);
        tagged(&mut roff, page.repl);
    }
    roff.control("SH", ["EXIT STATUS"]);
    tagged(&mut roff, text::EXIT_STATUS);
    roff.control("SH", ["ENVIRONMENT"]);
    tagged(&mut roff, text::ENVIRONMENT);
    paragraph(&mut roff, text::SUBSTITUTION);
    roff.control("SH", ["FILES"]);
    tagged(&mut roff, text::FILES);
    roff.control("SH", ["EXAMPLES"]);
    for (command, what) in page.examples {
        paragraph(&mut roff, what);
        roff.control("RS", ["4"]);
        roff.control("nf", []);
        roff.text([roman(*command)]);
        roff.control("fi", []);
        roff.control("RE", []);
    }
    roff.control("SH", ["SEE ALSO"]);
    let others: Vec<&String> = pages.iter().filter(|p| *p != name).collect();
    let mut refs: Vec<Inline> = Vec::new();
    for (i, other) in others.iter().enumerate() {
        refs.push(bold(other.as_str()));
        refs.push(roman(if i + 1 < others.len() { "(1), " } else { "(1)" }));
    }
    roff.text(refs);
    paragraph(&mut roff, text::SEE_ALSO_DOCS);
    roff
}

/// A `.PP` paragraph.
fn paragraph(roff: &mut Roff, text: &str) {
    roff.control("PP", []);
    roff.text([roman(text)]);
}

/// `.TP` entries: the tag in bold, its `<PLACEHOLDER>` words in italics (without the
/// brackets), then its text.
fn tagged(roff: &mut Roff, entries: &[(&str, &str)]) {
    for (tag, text) in entries {
        roff.control("TP", []);
        let mut inlines = Vec::new();
        for (i, word) in tag.split(' ').enumerate() {
            if i > 0 {
                inlines.push(roman(" "));
            }
            match word.strip_prefix('<').and_then(|w| w.strip_suffix('>')) {
                Some(placeholder) => inlines.push(italic(placeholder)),
                None => inlines.push(bold(word)),
            }
        }
        roff.text(inlines);
        roff.text([roman(*text)]);
    }
}
