//! What ships beside the binary: `--version` (commit and build date, from build.rs), the
//! Docker image's commands and the deployment config they use, LICENSE, CHANGELOG.md and
//! the install docs, the man pages, and the README's contents pointing into docs/.

use crate::common::*;

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `git rev-parse --short HEAD` of this checkout, or "unknown" where build.rs would say so.
fn head_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

#[test]
fn version_names_the_git_commit_and_the_build_date() {
    let version = env!("CARGO_PKG_VERSION");
    let long = run(bin().arg("--version"));
    assert_eq!(long.code, 0, "{}", long.stderr);
    let prefix = format!("continuum {version} (commit {}, built ", head_commit());
    let line = long.stdout.trim_end();
    assert!(
        line.starts_with(&prefix),
        "{line:?} should start with {prefix:?}"
    );
    let date = line[prefix.len()..]
        .strip_suffix(')')
        .unwrap_or_else(|| panic!("{line:?}"));
    let parts: Vec<u32> = date
        .split('-')
        .map(|p| {
            p.parse()
                .unwrap_or_else(|_| panic!("{date:?} is no YYYY-MM-DD"))
        })
        .collect();
    assert!(
        date.len() == 10 && parts.len() == 3,
        "{date:?} is no YYYY-MM-DD"
    );
    assert!(parts[0] >= 1970 && (1..=12).contains(&parts[1]) && (1..=31).contains(&parts[2]));
    // -V stays the bare version (man pages and scripts read it).
    let short = run(bin().arg("-V"));
    assert_eq!(short.stdout.trim_end(), format!("continuum {version}"));
}

#[test]
fn the_license_changelog_and_install_docs_are_shipped() {
    // Cargo.toml's license is the text in LICENSE.
    assert_eq!(env!("CARGO_PKG_LICENSE"), "Apache-2.0");
    let license = std::fs::read_to_string(repo("LICENSE")).expect("LICENSE");
    assert!(
        license.contains("Apache License") && license.contains("Version 2.0, January 2004"),
        "LICENSE is not the Apache License 2.0 that Cargo.toml names"
    );
    // The changelog covers the version being built.
    let changelog = std::fs::read_to_string(repo("CHANGELOG.md")).expect("CHANGELOG.md");
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        changelog.starts_with("# Changelog\n") && changelog.contains(version),
        "CHANGELOG.md says nothing of {version}"
    );
    // The install section: cargo install, and where completions and man pages go.
    let install = std::fs::read_to_string(repo("docs/install.md")).unwrap();
    for step in [
        "cargo install --path .",
        "continuum completions bash > ",
        "continuum man --out-dir ",
        "continuum --version",
    ] {
        assert!(install.contains(step), "docs/install.md lacks {step:?}");
    }
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    assert!(
        readme.contains("(docs/install.md)"),
        "README links no install section"
    );
}

/// The JSON array of a Dockerfile instruction (`HEALTHCHECK … CMD [...]`, `ENTRYPOINT [...]`),
/// continuation lines joined.
fn dockerfile_exec_form(instruction: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo("Dockerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|l| l.starts_with(instruction))
        .unwrap_or_else(|| panic!("the Dockerfile has no {instruction}"));
    let array = &line[line.find('[').expect("exec form")..];
    serde_json::from_str(array).unwrap_or_else(|e| panic!("{line}: {e}"))
}

#[test]
fn the_images_healthcheck_and_entrypoint_are_commands_the_binary_takes() {
    let check = dockerfile_exec_form("HEALTHCHECK");
    assert_eq!(check[..2], ["continuum", "health-check"], "{check:?}");
    // Whatever listens on 8080 here, the arguments parse: 0 or 1, never a usage error (2).
    let out = run(bin().args(&check[1..]));
    assert!(out.code == 0 || out.code == 1, "{check:?}: {}", out.stderr);
    assert_eq!(dockerfile_exec_form("ENTRYPOINT"), ["continuum"]);
    assert_eq!(dockerfile_exec_form("CMD"), ["serve"]);
}

#[test]
fn the_deployment_config_is_valid_and_writes_only_to_the_state_directory() {
    let file = repo("packaging/config.yaml");
    let out = run(bin().args(["config", "validate", "--config"]).arg(&file));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    // Relative paths would land in /etc/continuum-router, read-only under the unit.
    let text = std::fs::read_to_string(&file).unwrap();
    for key in [
        "path: \"/var/lib/continuum-router/",
        "storage_path: \"/var/lib/continuum-router/",
    ] {
        assert!(text.contains(key), "packaging/config.yaml lacks {key}");
    }
    let unit = std::fs::read_to_string(repo("packaging/continuum.service")).unwrap();
    assert!(unit.contains("StateDirectory=continuum-router"), "{unit}");
    assert!(unit.contains(
        "ExecStart=/usr/local/bin/continuum serve --config /etc/continuum-router/config.yaml"
    ));
}

/// A roff page as plain text: font changes dropped, escapes undone.
fn unroff(page: &str) -> String {
    page.replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
        .replace("\\-", "-")
        .replace("\\*(Aq", "'")
        .replace("\\e", "\\")
        .replace("\\\\", "\\")
}

/// The text of section `name` (`.SH NAME` up to the next `.SH`).
fn section<'a>(page: &'a str, name: &str) -> &'a str {
    let heading = if name.contains(' ') {
        format!(".SH \"{name}\"\n")
    } else {
        format!(".SH {name}\n")
    };
    let start = page
        .find(&heading)
        .map(|i| i + heading.len())
        .unwrap_or_else(|| panic!("no {name} section"));
    let end = page[start..]
        .find("\n.SH ")
        .map_or(page.len(), |i| start + i);
    &page[start..end]
}

/// The long options `continuum <command> --help` lists.
fn long_options(command: &[&str]) -> Vec<String> {
    let help = run(bin().args(command).arg("--help"));
    assert_eq!(help.code, 0, "{command:?} --help: {}", help.stderr);
    help.stdout
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("--")))
        .map(|w| {
            w.trim_end_matches(',')
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn man_pages_have_every_section_option_and_repl_command() {
    let dir = temp_dir("man-sections");
    assert_eq!(run(bin().args(["man", "--out-dir"]).arg(&dir)).code, 0);
    let mut pages = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let page = unroff(&std::fs::read_to_string(&path).unwrap());
        pages += 1;
        let fix = "(the words are in src/cli/man/text.rs)";
        // More than clap's one-line summary.
        assert!(
            section(&page, "DESCRIPTION").contains("\n.PP\n"),
            "{name}: DESCRIPTION has only the summary {fix}"
        );
        let examples = section(&page, "EXAMPLES");
        assert!(examples.contains("continuum "), "{name}: no EXAMPLES {fix}");
        let env = section(&page, "ENVIRONMENT");
        for var in [
            "CONTINUUM_CONFIG",
            "CONTINUUM_BIND_ADDRESS",
            "CONTINUUM_BACKEND_URLS",
            "CONTINUUM_LOG_LEVEL",
            "CONTINUUM_URL",
            "CONTINUUM_API_KEY",
            "RUST_LOG",
            "NO_COLOR",
        ] {
            assert!(env.contains(var), "{name}: ENVIRONMENT lacks {var}");
        }
        let files = section(&page, "FILES");
        for file in [
            "./config.yaml",
            "~/.config/continuum-router/config.yaml",
            "/etc/continuum-router/config.yaml",
        ] {
            assert!(files.contains(file), "{name}: FILES lacks {file}");
        }
        let exit = section(&page, "EXIT STATUS");
        for code in ["\n0\n", "\n1\n", "\n2\n"] {
            assert!(exit.contains(code), "{name}: EXIT STATUS lacks {code:?}");
        }
        assert!(section(&page, "SEE ALSO").contains("continuum"));
        // Every option of the command, from its --help.
        let synopsis = section(&page, "SYNOPSIS");
        let command: Vec<&str> = synopsis
            .split_whitespace()
            .take_while(|w| !w.starts_with(['<', '[']))
            .collect();
        assert_eq!(command[0], "continuum", "{name}: {synopsis}");
        let options = section(&page, "OPTIONS");
        for option in long_options(&command[1..]) {
            assert!(
                options.contains(&format!("{option} ")) || options.contains(&format!("{option}\n")),
                "{name}: OPTIONS lacks {option}"
            );
        }
    }
    assert!(pages >= 16, "only {pages} pages");
    let chat = unroff(&std::fs::read_to_string(dir.join("continuum-chat.1")).unwrap());
    let repl = section(&chat, "INTERACTIVE COMMANDS");
    for command in [
        "/help",
        "/exit, /quit",
        "/model NAME",
        "/models",
        "/system TEXT",
        "/clear",
        "/set temperature X",
        "/set max_tokens N",
        "\n\\\n",
        "Ctrl-C",
        "Ctrl-D",
    ] {
        assert!(repl.contains(command), "continuum-chat.1 lacks {command:?}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Markdown text outside fenced code blocks.
fn prose(text: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, backticks and punctuation dropped, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn the_readme_points_into_docs_and_every_link_resolves() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    for doc in [
        "docs/configuration.md",
        "docs/operations.md",
        "docs/local-models.md",
    ] {
        assert!(
            readme.contains(&format!("]({doc})")),
            "README's contents lack {doc}"
        );
    }
    let mut pages = vec![repo("README.md"), repo("CHANGELOG.md")];
    for entry in std::fs::read_dir(repo("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    let mut links = 0;
    for page in &pages {
        let text = prose(&std::fs::read_to_string(page).unwrap());
        for (_, rest) in text.match_indices("](").map(|(i, _)| text.split_at(i + 2)) {
            let target = &rest[..rest.find(')').unwrap()];
            if target.contains(':') || target.contains(' ') {
                continue; // https://…, mailto:, or not a link
            }
            links += 1;
            let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
            let file = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            assert!(
                file.exists(),
                "{}: link to {target}: no such file",
                page.display()
            );
            if fragment.is_empty() || file.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let headings: Vec<String> = prose(&std::fs::read_to_string(&file).unwrap())
                .lines()
                .filter(|l| l.starts_with('#'))
                .map(|l| anchor(l.trim_start_matches('#')))
                .collect();
            assert!(
                headings.iter().any(|h| h == fragment),
                "{}: link to {target}: no such heading in {}",
                page.display(),
                file.display()
            );
        }
    }
    assert!(links > 50, "only {links} links found");
}
