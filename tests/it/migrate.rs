//! `continuum config migrate` on fixtures of each older form (tests/fixtures/migrate):
//! the diff, dry runs writing nothing, FILE.bak, comments and key order kept, the result
//! valid, and a second run changing nothing.

use crate::common::*;

fn fixture_copy(name: &str) -> std::path::PathBuf {
    let dir = temp_dir("migrate");
    let to = dir.join(name);
    std::fs::write(&to, fixture(&format!("migrate/{name}"))).unwrap();
    to
}

fn bak(file: &std::path::Path) -> std::path::PathBuf {
    let mut b = file.as_os_str().to_owned();
    b.push(".bak");
    b.into()
}

#[test]
fn every_old_form_is_rewritten_keeping_comments_and_order() {
    for (name, comments, expected_changes) in [
        (
            "old-forms.yaml",
            &[
                "# where to listen",
                "# the local servers",
                "# snake_case, as older versions wrote it",
                "# the old, singular name",
                "# seconds",
            ][..],
            &[
                "bind_address: moved into server",
                "backend_urls: 2 URL(s) → backends",
                "selection_strategy: least_latency → LeastLatency",
                "health_check: renamed to health_checks",
                "health_checks.interval: 30 → \"30s\"",
                "timeouts.request.streaming.chunk_timeout: renamed to chunk_interval",
                "retry.initial_delay: 1 → \"1s\"",
                "circuit_breaker.reset_timeout: renamed to timeout",
                "model_configs.[].selection_strategy: weighted_round_robin → WeightedRoundRobin",
            ][..],
        ),
        (
            "old-forms.toml",
            &[
                "# An outdated config in TOML.",
                "# where to listen",
                "# the old, singular name",
                "# seconds",
            ][..],
            &[
                "bind_address: moved into server",
                "backend_urls: 2 URL(s) → backends",
                "selection_strategy: round_robin → RoundRobin",
                "health_check: renamed to health_checks",
                "timeouts.connection: 10 → \"10s\"",
                "timeouts.request.streaming.chunk_timeout: renamed to chunk_interval",
            ][..],
        ),
    ] {
        let file = fixture_copy(name);
        let original = std::fs::read_to_string(&file).unwrap();
        // The old form does not load as it is.
        assert_eq!(
            run(bin().args(["config", "validate", "--config"]).arg(&file)).code,
            1
        );

        let dry = run(bin().args(["config", "migrate", "--dry-run"]).arg(&file));
        assert_eq!(dry.code, 0, "{name}: {}", dry.stderr);
        assert!(
            dry.stdout.contains("(migrated)")
                && dry.stdout.contains("\n-")
                && dry.stdout.contains("\n+"),
            "a diff: {}",
            dry.stdout
        );
        for change in expected_changes {
            assert!(
                dry.stdout.contains(change),
                "{name}: '{change}' missing:\n{}",
                dry.stdout
            );
        }
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            original,
            "dry run wrote"
        );
        assert!(!bak(&file).exists());

        // No terminal: written without asking.
        let wrote = run(bin().args(["config", "migrate"]).arg(&file));
        assert_eq!(wrote.code, 0, "{}", wrote.stderr);
        assert!(!wrote.stderr.contains("warning"), "{}", wrote.stderr);
        assert_eq!(std::fs::read_to_string(bak(&file)).unwrap(), original);
        let migrated = std::fs::read_to_string(&file).unwrap();
        for c in comments {
            assert!(
                migrated.contains(c),
                "{name}: comment '{c}' lost:\n{migrated}"
            );
        }
        let order = |k: &str| {
            migrated
                .find(k)
                .unwrap_or_else(|| panic!("{k} missing:\n{migrated}"))
        };
        assert!(order("selection_strategy") < order("health_checks"));
        assert!(order("health_checks") < order("timeouts"));
        let valid = run(bin().args(["config", "validate", "--config"]).arg(&file));
        assert_eq!(
            valid.code, 0,
            "{name} migrated is valid: {}{}\n{migrated}",
            valid.stdout, valid.stderr
        );
        assert!(valid.stdout.contains("2 backend(s)"));

        // Idempotent: a second run changes nothing.
        let again = run(bin().args(["config", "migrate", "--yes"]).arg(&file));
        assert_eq!(again.code, 0);
        assert!(again.stdout.contains("already current"), "{}", again.stdout);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), migrated);
    }
}

#[test]
fn current_files_and_conflicts_and_the_original_flag() {
    let file = fixture_copy("current.yaml");
    let out = run(bin().args(["config", "migrate"]).arg(&file));
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("already current"));
    assert!(!bak(&file).exists());

    let dir = temp_dir("migrate-conflict");
    let both = dir.join("both.yaml");
    std::fs::write(
        &both,
        "backend_urls: [\"http://a:1\"]\nbackends:\n  - {name: b, type: mock}\n",
    )
    .unwrap();
    let out = run(bin().args(["config", "migrate", "--yes"]).arg(&both));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("both.yaml") && out.stderr.contains("backend_urls and backends"),
        "{}",
        out.stderr
    );

    let legacy = fixture_copy("old-forms.yaml");
    let before = std::fs::read_to_string(&legacy).unwrap();
    let out = run(bin()
        .arg("--migrate-config-file")
        .arg(&legacy)
        .arg("--dry-run"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("bind_address: moved into server"));
    assert_eq!(std::fs::read_to_string(&legacy).unwrap(), before);

    let missing = run(bin().args(["config", "migrate", "/nonexistent/config.yaml"]));
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("/nonexistent/config.yaml"));
}

#[test]
fn on_a_terminal_it_asks_before_writing() {
    use expectrl::Expect;
    let file = fixture_copy("old-forms.yaml");
    let original = std::fs::read_to_string(&file).unwrap();
    for (answer, written) in [("n", false), ("y", true)] {
        let mut cmd = bin();
        cmd.args(["config", "migrate"]).arg(&file);
        let mut p = expectrl::Session::spawn(cmd).unwrap();
        p.set_expect_timeout(Some(std::time::Duration::from_secs(20)));
        p.expect("Write").unwrap();
        p.send(answer).unwrap();
        p.expect(if written { "wrote" } else { "not written" })
            .unwrap();
        p.expect(expectrl::Eof).unwrap();
        let now = std::fs::read_to_string(&file).unwrap();
        assert_eq!(now != original, written, "answer {answer}");
    }
}
