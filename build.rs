//! Build metadata for `continuum --version`: the git commit and the build date, as the
//! environment variables `CONTINUUM_GIT_COMMIT` and `CONTINUUM_BUILD_DATE` of the crate.
//!
//! The commit is `$CONTINUUM_GIT_COMMIT` when set (a Docker build, which has no `.git`,
//! passes it as a build argument), else `git rev-parse --short HEAD`, else "unknown" (a
//! source tarball, `cargo install` from a registry). The date is `$SOURCE_DATE_EPOCH` when
//! set (reproducible builds), else now, as a UTC `YYYY-MM-DD`. The script reruns only when
//! the commit can have changed (`HEAD` and the branch it points to), so incremental builds
//! stay fast.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CONTINUUM_GIT_COMMIT");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let commit = std::env::var("CONTINUUM_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=CONTINUUM_GIT_COMMIT={}", commit.trim());
    println!("cargo:rustc-env=CONTINUUM_BUILD_DATE={}", build_date());
    watch_git();
}

/// Reruns the script when `HEAD` moves: a checkout changes `HEAD`, a commit the branch's
/// ref (or `packed-refs`, where `git gc` keeps refs). Paths come from git itself, so a
/// worktree (whose `.git` is a file) works too.
fn watch_git() {
    let mut paths = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        paths.push(branch);
    }
    for p in paths {
        if let Some(path) = git(&["rev-parse", "--git-path", &p]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
}

/// A git command's trimmed output, or `None` (no git, not a repository, failure).
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// The build date, UTC, as `YYYY-MM-DD`.
fn build_date() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
