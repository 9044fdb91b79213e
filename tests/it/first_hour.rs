//! What a new user meets in the first hour, run as processes: bare `continuum` without a
//! config, client commands finding the router of the config in scope, one meaning per
//! flag, and configs in the original router's older form.

use std::net::TcpListener;
use std::time::Duration;

use crate::common::*;

const MOCK: &str =
    "backends:\n  - {name: one, type: mock, models: [mock-a], mock: {first_token_latency: 0ms, tokens_per_second: 0}}\n";

/// A port nothing listens on (bound once, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `bin()` in `dir` with `HOME` there too, so the search path finds only what the test wrote.
fn bin_in(dir: &std::path::Path) -> std::process::Command {
    let mut c = bin();
    c.current_dir(dir)
        .env("HOME", dir)
        .env_remove("CONTINUUM_URL");
    c
}

#[test]
fn bare_continuum_without_a_config_says_where_it_looked_and_how_to_start() {
    let dir = temp_dir("bare");
    let out = run(&mut bin_in(&dir));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    for expected in [
        "no config file found; looked for:",
        "  ./config.yaml\n",
        "/.config/continuum-router/config.yaml\n",
        "  /etc/continuum-router/config.toml\n",
        "continuum config generate > config.yaml",
        "continuum serve",
    ] {
        assert!(
            out.stderr.contains(expected),
            "{expected:?} in:\n{}",
            out.stderr
        );
    }
    let help = run(bin().arg("--help"));
    assert!(
        help.stdout
            .contains("Without a subcommand, `continuum` serves the config file it finds"),
        "{}",
        help.stdout
    );
    // With a config in scope, bare `continuum` serves it.
    std::fs::write(
        dir.join("config.yaml"),
        format!("server: {{bind_address: \"127.0.0.1:0\"}}\n{MOCK}"),
    )
    .unwrap();
    let mut p = ServeProcess::start(&mut bin_in(&dir), 1);
    p.terminate();
    assert_eq!(p.wait_exit(Duration::from_secs(20)), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_use_the_router_of_the_config_in_scope_and_continuum_url() {
    let router = start_router(MOCK).await;
    let addr = router.tcp_addr().unwrap();
    let dir = temp_dir("in-scope");
    std::fs::write(
        dir.join("config.yaml"),
        format!(
            "server:\n  bind_address: \"0.0.0.0:{}\"\n{MOCK}",
            addr.port()
        ),
    )
    .unwrap();
    let elsewhere = temp_dir("elsewhere");
    let url = format!("http://{addr}");
    let outs = tokio::task::spawn_blocking(move || {
        [
            run(bin_in(&dir).args(["models", "list", "--json"])),
            run(bin_in(&dir).args(["chat", "-m", "mock-a", "found by config"])),
            run(bin_in(&dir).args(["health-check"])),
            run(bin_in(&dir).args(["bench", "-n", "2", "-c", "1", "--json"])),
            run(bin_in(&elsewhere).env("CONTINUUM_URL", &url).args([
                "chat",
                "-m",
                "mock-a",
                "found by env",
            ])),
            run(bin_in(&elsewhere)
                .env("CONTINUUM_CONFIG", dir.join("config.yaml"))
                .args(["models", "list", "--json"])),
            run(bin_in(&elsewhere)
                .args(["models", "list", "--json", "-c"])
                .arg(dir.join("config.yaml"))),
        ]
    })
    .await
    .unwrap();
    for (i, out) in outs.iter().enumerate() {
        assert_eq!(out.code, 0, "command {i}: {}", out.stderr);
    }
    assert!(outs[0].stdout.contains("\"mock-a\""), "{}", outs[0].stdout);
    assert_eq!(outs[1].stdout, "found by config\n");
    assert!(
        outs[2].stdout.contains("/health: healthy (200)"),
        "{}",
        outs[2].stdout
    );
    assert!(
        outs[3].stdout.contains("\"requests\""),
        "{}",
        outs[3].stdout
    );
    assert_eq!(outs[4].stdout, "found by env\n");
    assert!(outs[5].stdout.contains("\"mock-a\""));
    assert!(outs[6].stdout.contains("\"mock-a\""));
}

#[test]
fn nothing_listening_is_one_sentence_naming_the_url_and_what_to_do() {
    let dir = temp_dir("nothing-listening");
    let port = closed_port();
    std::fs::write(
        dir.join("config.yaml"),
        format!("server: {{bind_address: \"127.0.0.1:{port}\"}}\n{MOCK}"),
    )
    .unwrap();
    let expected = format!(
        "error: nothing is listening at http://127.0.0.1:{port} (server.bind_address in ./config.yaml); start `continuum serve` or pass --url\n"
    );
    for args in [
        vec!["chat", "-m", "m", "hi"],
        vec!["models", "list"],
        vec!["health-check"],
        vec!["bench", "-n", "1"],
    ] {
        let out = run(bin_in(&dir).args(&args));
        assert_eq!(out.code, 1, "{args:?}");
        assert_eq!(out.stderr, expected, "{args:?}");
    }
    let out = run(bin_in(&dir).args(["chat", "--url", &format!("http://127.0.0.1:{port}"), "hi"]));
    assert_eq!(
        out.stderr,
        format!("error: nothing is listening at http://127.0.0.1:{port}; start `continuum serve` or pass --url\n")
    );
    // From the environment: the variable is named, as the config key is above.
    for args in [vec!["chat", "-m", "m", "hi"], vec!["models", "list"]] {
        let out = run(bin_in(&dir)
            .env("CONTINUUM_URL", format!("http://127.0.0.1:{port}"))
            .args(&args));
        assert_eq!(
            out.stderr,
            format!("error: nothing is listening at http://127.0.0.1:{port} (CONTINUUM_URL); start `continuum serve` or pass --url\n"),
            "{args:?}"
        );
    }
    let out = run(bin_in(&dir).args([
        "models",
        "list",
        "--url",
        "http://no-such-host.invalid:8080",
    ]));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("error: cannot reach http://no-such-host.invalid:8080: ")
            && out.stderr.ends_with("; check the URL or pass --url\n")
            && !out.stderr.contains("client error"),
        "{}",
        out.stderr
    );
}

#[test]
fn flags_mean_one_thing_everywhere() {
    let dir = temp_dir("flags");
    let file = dir.join("mock.yaml");
    std::fs::write(&file, MOCK).unwrap();
    // -c is --config for every command that takes a config (bench keeps -c for concurrency,
    // as SPEC §1 has it, and takes the config as --config).
    for args in [
        vec!["serve", "-c"],
        vec!["config", "validate", "-c"],
        vec!["chat", "--in-process", "-m", "mock-a", "-c"],
        vec!["models", "list", "--in-process", "--json", "-c"],
        vec!["auth", "status", "-c"],
        vec!["health-check", "--help", "-c"],
    ] {
        let help = run(bin().args(&args[..args.len() - 1]).arg("--help"));
        assert!(
            help.stdout.contains("-c, --config <FILE>"),
            "{args:?}: {}",
            help.stdout
        );
    }
    let bench = run(bin().args(["bench", "--help"]));
    assert!(
        bench.stdout.contains("-c, --concurrency <N>"),
        "{}",
        bench.stdout
    );
    assert!(
        bench.stdout.contains("    --config <FILE>"),
        "{}",
        bench.stdout
    );
    // Out of habit, `bench -c FILE`: a usage error saying where the config goes.
    let out = run(bin().args(["bench", "-n", "1", "-c"]).arg(&file));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "is not a whole number (bench's -c is the concurrency; pass a config file as --config {})",
            file.display()
        )),
        "{}",
        out.stderr
    );
    let out = run(bin()
        .args(["chat", "--in-process", "-m", "mock-a", "-c"])
        .arg(&file)
        .arg("direct"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "direct\n");

    // serve --port keeps the configured host and takes the port.
    let port = closed_port();
    let mut p = ServeProcess::start(
        bin()
            .args(["serve", "--port", &port.to_string(), "-c"])
            .arg(&file),
        1,
    );
    assert_eq!(p.tcp_addr().port(), port);
    // health-check --url takes the router's root like the other client commands.
    let root = format!("http://127.0.0.1:{port}");
    let out = run(bin().args(["health-check", "--url", &root]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, format!("{root}/health: healthy (200)\n"));
    p.terminate();
    assert_eq!(p.wait_exit(Duration::from_secs(20)), 0);
    assert_eq!(
        run(bin().args(["serve", "--port", "1", "--bind", "127.0.0.1:2"])).code,
        2
    );

    // Hidden legacy flags are not offered by completions.
    let bash = run(bin().args(["completions", "bash"]));
    for hidden in [
        "--generate-config",
        "--migrate-config-file",
        "--health-check-url",
        "man",
    ] {
        assert!(
            !bash.stdout.split_whitespace().any(|w| w == hidden),
            "{hidden} offered by completions"
        );
    }
}

#[test]
fn an_older_config_gets_the_migrate_hint_and_unknown_keys_show_with_errors() {
    let dir = temp_dir("older");
    let old = dir.join("old.yaml");
    std::fs::write(
        &old,
        "bind_address: 127.0.0.1:8080\nbackend_urls:\n  - http://localhost:11434\nhealth_checks:\n  interval: 30\n",
    )
    .unwrap();
    let hint = format!(
        "hint: this looks like an older config (health_checks.interval: 30 → \"30s\" and 2 more): run `continuum config migrate {}`\n",
        old.display()
    );
    for args in [vec!["config", "validate", "-c"], vec!["serve", "-c"]] {
        let out = run(bin().args(&args).arg(&old));
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
        assert!(out.stderr.ends_with(&hint), "{args:?}:\n{}", out.stderr);
    }
    let typo = dir.join("typo.yaml");
    std::fs::write(
        &typo,
        "health_checks:\n  intervall: 5s\nserver:\n  bind_address: 12\n",
    )
    .unwrap();
    let out = run(bin().args(["serve", "-c"]).arg(&typo));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("health_checks.intervall: unknown key")
            && out.stderr.contains("server.bind_address"),
        "{}",
        out.stderr
    );
}
