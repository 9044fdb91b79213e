//! What ships beside the binary: `--version` (commit and build date, from build.rs), the
//! Docker image's commands and the deployment config they use, and the man pages.

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
    assert!(parts[0] >= 2025 && (1..=12).contains(&parts[1]) && (1..=31).contains(&parts[2]));
    // -V stays the bare version (man pages and scripts read it).
    let short = run(bin().arg("-V"));
    assert_eq!(short.stdout.trim_end(), format!("continuum {version}"));
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
