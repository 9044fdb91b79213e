//! The `continuum` binary's commands other than `serve`: exit codes, messages, generated files.

use std::path::Path;

use crate::common::*;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn validate_reports_every_bad_key_with_its_path() {
    let dir = temp_dir("validate");
    let file = dir.join("broken.yaml");
    std::fs::write(
        &file,
        r#"
server:
  bind_adress: "0.0.0.0:8080"
  max_body_size: "lots"
selection_strategy: FastestFirst
backends:
  - name: one
    type: openai
    api_key: "${CONTINUUM_TEST_UNSET_KEY}"
  - name: two
    url: "localhost:8000"
    weight: 0
  - name: three
    type: mock
    mock: {fail_rate: 2}
health_checks:
  intervall: "30s"
web_search:
  enabled: true
timeouts:
  request:
    standard: {first_byte: 30}
"#,
    )
    .unwrap();
    let out = run(bin().args(["config", "validate", "--config"]).arg(&file));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&file.display().to_string()),
        "names the file: {}",
        out.stderr
    );
    for expected in [
        "server.bind_adress: unknown key; did you mean 'bind_address'?",
        "server.max_body_size: 'lots' is not a size",
        "selection_strategy: unknown strategy 'FastestFirst'",
        "backends[0].api_key: an api_key (type 'openai') is required, but environment variable CONTINUUM_TEST_UNSET_KEY is not set",
        "backends[1].url: 'localhost:8000' must start with http:// or https://",
        "backends[1].weight: 0 is out of range",
        "backends[2].mock.fail_rate: 2 is not between 0.0 and 1.0",
        "health_checks.intervall: unknown key; did you mean 'interval'?",
        "web_search: not supported yet",
        "timeouts.request.standard.first_byte: durations need a unit",
    ] {
        assert!(out.stderr.contains(expected), "missing '{expected}' in:\n{}", out.stderr);
    }

    // With the variable set, that problem goes away (substitution from the environment).
    let out = run(bin()
        .args(["config", "validate", "--config"])
        .arg(&file)
        .env("CONTINUUM_TEST_UNSET_KEY", "sk-x"));
    assert!(
        !out.stderr.contains("backends[0].api_key"),
        "{}",
        out.stderr
    );

    // `serve` refuses features that are not built yet, too: they are never silently ignored.
    let unsupported = dir.join("unsupported.yaml");
    std::fs::write(
        &unsupported,
        "backends: [{name: m, type: mock}]\nweb_search: {enabled: true}\n",
    )
    .unwrap();
    let out = run(bin()
        .args(["serve", "--bind", "127.0.0.1:0", "--config"])
        .arg(&unsupported));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("web_search: not supported yet"),
        "{}",
        out.stderr
    );

    // A syntax error names the file and the line.
    std::fs::write(&file, "server:\n  bind_address: [unclosed\n").unwrap();
    let out = run(bin().args(["config", "validate", "--config"]).arg(&file));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("broken.yaml") && out.stderr.contains("line"),
        "{}",
        out.stderr
    );

    // A missing file is named.
    let out = run(bin().args(["config", "validate", "--config", "/nonexistent/c.yaml"]));
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("/nonexistent/c.yaml"), "{}", out.stderr);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn generated_config_is_the_repository_sample_and_every_form_validates() {
    let out = run(bin().args(["config", "generate"]));
    assert_eq!(out.code, 0);
    let sample = std::fs::read_to_string(repo("config.sample.yaml")).unwrap();
    assert_eq!(
        out.stdout, sample,
        "config.sample.yaml must be `continuum config generate` output; regenerate it"
    );
    let legacy = run(bin().arg("--generate-config"));
    assert_eq!(legacy.stdout, sample);

    let out = run(bin()
        .args(["config", "validate", "--config"])
        .arg(repo("config.sample.yaml")));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("valid"));

    let dir = temp_dir("generate");
    for (args, name) in [
        (&["config", "generate", "--format", "toml"][..], "c.toml"),
        (&["config", "generate", "--minimal"][..], "m.yaml"),
        (
            &["config", "generate", "--minimal", "--format", "toml"][..],
            "m.toml",
        ),
    ] {
        let out = run(bin().args(args));
        assert_eq!(out.code, 0);
        let path = dir.join(name);
        std::fs::write(&path, &out.stdout).unwrap();
        let v = run(bin().args(["config", "validate", "--config"]).arg(&path));
        assert_eq!(v.code, 0, "{args:?}: {}", v.stderr);
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn shell_completions_and_man_pages_are_current() {
    for (shell, file) in [
        ("bash", "completions/continuum.bash"),
        ("zsh", "completions/_continuum"),
        ("fish", "completions/continuum.fish"),
        ("powershell", "completions/continuum.ps1"),
        ("elvish", "completions/continuum.elv"),
    ] {
        let out = run(bin().args(["completions", shell]));
        assert_eq!(out.code, 0);
        let current = std::fs::read_to_string(repo(file)).unwrap_or_default();
        assert!(
            out.stdout == current,
            "{file} is stale; regenerate with `continuum completions {shell} > {file}`"
        );
    }
    let man = run(bin().arg("man"));
    assert_eq!(man.code, 0);
    let current = std::fs::read_to_string(repo("man/continuum.1")).unwrap_or_default();
    assert!(
        man.stdout == current,
        "man/continuum.1 is stale; regenerate with `continuum man --out-dir man`"
    );
    // One page per subcommand, all current, none left over.
    let dir = temp_dir("man");
    assert_eq!(run(bin().args(["man", "--out-dir"]).arg(&dir)).code, 0);
    let names = |d: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let generated = names(&dir);
    assert!(
        generated.contains(&"continuum-chat.1".to_string()),
        "{generated:?}"
    );
    assert!(generated.contains(&"continuum-config-validate.1".to_string()));
    assert_eq!(
        generated,
        names(&repo("man")),
        "regenerate with `continuum man --out-dir man`"
    );
    for page in &generated {
        assert!(
            std::fs::read(dir.join(page)).unwrap()
                == std::fs::read(repo("man").join(page)).unwrap(),
            "man/{page} is stale; regenerate with `continuum man --out-dir man`"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(bin().arg("frobnicate")).code, 2);
    assert_eq!(run(bin().args(["serve", "--log-format", "xml"])).code, 2);
    assert_eq!(run(bin().args(["completions", "tcsh"])).code, 2);
    assert_eq!(run(bin().arg("--help")).code, 0);
}

#[tokio::test]
async fn health_check_exit_codes() {
    let router = start_router("backends: [{name: demo, type: mock}]").await;
    let url = format!("http://{}/health", router.tcp_addr().unwrap());
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/health", l.local_addr().unwrap())
    };
    let not_found = format!("http://{}/nothing", router.tcp_addr().unwrap());
    let (ok, legacy, down, missing, bad) = tokio::task::spawn_blocking(move || {
        (
            run(bin().args(["health-check", "--url", &url])),
            run(bin().args(["--health-check", "--health-check-url", &url])),
            run(bin().args(["health-check", "--url", &closed])),
            run(bin().args(["health-check", "--url", &not_found])),
            run(bin().args(["health-check", "--url", "not a url"])),
        )
    })
    .await
    .unwrap();
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert_eq!(legacy.code, 0, "{}", legacy.stderr);
    assert_eq!(down.code, 1);
    assert!(down.stderr.contains("127.0.0.1"), "{}", down.stderr);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("404"), "{}", missing.stderr);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("not a url"));

    // A server that accepts but never answers: --timeout bounds the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/health", silent.local_addr().unwrap());
    let started = std::time::Instant::now();
    let hung = tokio::task::spawn_blocking(move || {
        run(bin().args(["health-check", "--timeout", "300ms", "--url", &silent_url]))
    })
    .await
    .unwrap();
    assert_eq!(hung.code, 1);
    assert!(
        hung.stderr.contains("no answer within 300ms"),
        "{}",
        hung.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(8));
    drop(silent);
    assert_eq!(
        run(bin().args(["health-check", "--timeout", "soon"])).code,
        2
    );
}
