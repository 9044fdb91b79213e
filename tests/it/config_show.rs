//! `continuum config show` as a process: the effective configuration with the source of
//! every value (file, environment variable, flag, default), secrets never printed.

use crate::common::*;

/// Secrets the config below holds, one in every place a secret can be.
const SECRETS: [&str; 9] = [
    "sk-live-from-env-1",
    "org-secret-42",
    "sk-client-secret-1",
    "sk-from-keys-file-2",
    "adm-secret-7",
    "sk-bypass-9",
    "hunter2",
    "cs-secret-5",
    "X-Api-Key-Value-3",
];

fn write_config(dir: &std::path::Path) -> std::path::PathBuf {
    std::fs::write(
        dir.join("keys.yaml"),
        "- {key: sk-from-keys-file-2, id: from-file}\n",
    )
    .unwrap();
    let file = dir.join("c.yaml");
    std::fs::write(
        &file,
        r#"server: {bind_address: "127.0.0.1:7000", workers: 2}
backends:
  - name: openai
    type: openai
    api_key: "${TEST_SHOW_OPENAI_KEY}"
    org_id: org-secret-42
    models: [gpt-4o]
    headers: {X-Api-Key: X-Api-Key-Value-3, X-Team: research}
  - name: hosted
    url: "http://llm.example.com"
    auth: {type: oauth, oauth: {client_id: cli, client_secret: cs-secret-5, device_authorization_url: "http://a/d", token_url: "http://a/t"}}
metrics: {endpoint: /m}
api_keys:
  api_keys: [{key: sk-client-secret-1, id: team-a, rate_limit: 600}]
  api_keys_file: keys.yaml
rate_limiting:
  bypass_keys: [sk-bypass-9]
tracing: {otlp_endpoint: "http://ops:hunter2@collector:4318"}
admin: {auth: {method: bearer, bearer_token: adm-secret-7}}
"#,
    )
    .unwrap();
    file
}

fn show(file: &std::path::Path, extra: &[&str]) -> Run {
    run(bin()
        .args(["config", "show", "--config"])
        .arg(file)
        .args(extra)
        .env("TEST_SHOW_OPENAI_KEY", "sk-live-from-env-1")
        .env("CONTINUUM_BIND_ADDRESS", "127.0.0.1:7001")
        .env("CONTINUUM_LOG_LEVEL", "debug"))
}

#[test]
fn config_show_names_where_every_value_came_from() {
    let dir = temp_dir("config-show");
    let file = write_config(&dir);
    let label = file.display().to_string();

    let json = show(&file, &["--health-check-interval", "7", "--json"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let (config, sources) = (&v["config"], &v["sources"]);
    assert_eq!(v["file"], label.as_str());
    // The environment over the file, the command line over both, defaults for the rest.
    assert_eq!(config["server"]["bind_address"][0], "127.0.0.1:7001");
    assert_eq!(
        sources["server.bind_address"],
        "from CONTINUUM_BIND_ADDRESS"
    );
    assert_eq!(config["logging"]["level"], "debug");
    assert_eq!(sources["logging.level"], "from CONTINUUM_LOG_LEVEL");
    assert_eq!(config["health_checks"]["interval"], "7s");
    assert_eq!(
        sources["health_checks.interval"],
        "from --health-check-interval"
    );
    assert_eq!(config["server"]["workers"], 2);
    assert_eq!(sources["server.workers"], format!("from {label}"));
    assert_eq!(config["retry"]["max_attempts"], 3);
    assert_eq!(sources["retry.max_attempts"], "default");
    assert_eq!(sources["backends[0].url"], "default");
    assert_eq!(config["backends[0]"], serde_json::Value::Null);
    assert_eq!(config["backends"][0]["url"], "https://api.openai.com");
    // A value from ${VAR} names the variable; the original spelling counts as the file.
    assert_eq!(
        sources["backends[0].api_key"],
        format!("from {label} (${{TEST_SHOW_OPENAI_KEY}})")
    );
    assert_eq!(config["metrics"]["path"], "/m");
    assert_eq!(sources["metrics.path"], format!("from {label}"));
    assert_eq!(sources["admin.auth.token"], format!("from {label}"));
    // Keys from api_keys_file say so.
    assert_eq!(config["api_keys"]["api_keys"][1]["id"], "from-file");
    assert!(
        sources["api_keys.api_keys[1].id"]
            .as_str()
            .unwrap()
            .ends_with("keys.yaml"),
        "{sources}"
    );
    assert_eq!(config["backends"][0]["headers"]["X-Team"], "research");

    // The commented YAML says the same, and reads as the same tree.
    let yaml = show(&file, &["--health-check-interval", "7"]);
    assert_eq!(yaml.code, 0, "{}", yaml.stderr);
    let tree: serde_json::Value = serde_yaml::from_str(&yaml.stdout).unwrap();
    assert_eq!(&tree, config);
    let line = |key: &str| {
        yaml.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("{key} missing:\n{}", yaml.stdout))
            .to_string()
    };
    assert!(
        line("bind_address:").ends_with("# from CONTINUUM_BIND_ADDRESS"),
        "{}",
        yaml.stdout
    );
    assert!(line("max_attempts:").ends_with("# default"));
    assert!(line("interval:").ends_with("# from --health-check-interval"));
    assert!(yaml
        .stdout
        .contains(&format!("# file: {label} (from --config)")));

    // A flag wins over its environment variable.
    let flag = show(&file, &["--bind", "127.0.0.1:7002", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&flag.stdout).unwrap();
    assert_eq!(v["config"]["server"]["bind_address"][0], "127.0.0.1:7002");
    assert_eq!(v["sources"]["server.bind_address"], "from --bind");

    for out in [&json, &yaml, &flag] {
        for secret in SECRETS {
            assert!(
                !out.stdout.contains(secret) && !out.stderr.contains(secret),
                "{secret} printed:\n{}{}",
                out.stdout,
                out.stderr
            );
        }
    }
    // Not the stored digest of a key either.
    assert!(!json.stdout.contains("sha256:"), "{}", json.stdout);
    assert!(
        yaml.stdout.contains("org_id: \"[redacted]\""),
        "{}",
        yaml.stdout
    );
    assert!(
        yaml.stdout.contains("http://ops:***@collector:4318"),
        "{}",
        yaml.stdout
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn config_show_without_a_file_and_with_a_broken_one() {
    let dir = temp_dir("config-show-none");
    let out = run(bin()
        .args(["config", "show", "--json"])
        .current_dir(&dir)
        .env("HOME", &dir));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(v["file"].is_null());
    assert_eq!(v["sources"]["server.bind_address"], "default");
    assert_eq!(v["config"]["server"]["bind_address"][0], "127.0.0.1:8080");

    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "backends: [{name: x, type: vlm, url: \"http://h\"}]\n",
    )
    .unwrap();
    let out = run(bin().args(["config", "show", "--config"]).arg(&bad));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("backends[0].type: unknown backend type 'vlm'"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(&bad.display().to_string()));
    std::fs::remove_dir_all(&dir).unwrap();

    let help = run(bin().args(["config", "--help"]));
    assert!(
        help.stdout.contains("show") && help.stdout.contains("where each value came from"),
        "{}",
        help.stdout
    );
}
