//! Starting and stopping the real servers through `scripts/real-backends.sh`, and the
//! prerequisite check.

use std::process::Command;
use std::time::Duration;

fn script() -> Command {
    Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/real-backends.sh"
    ))
}

/// Whether llama-server can run here. When it cannot, the test fails saying why, unless
/// `CONTINUUM_E2E_SKIP` gives a reason to skip the suite on purpose (`scripts/test` sets it on
/// a machine that cannot run llama-server, and says so loudly before and after the run).
pub fn available(test: &str) -> bool {
    let out = script()
        .arg("check")
        .output()
        .expect("run scripts/real-backends.sh");
    if out.status.success() {
        return true;
    }
    let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
    match std::env::var("CONTINUUM_E2E_SKIP") {
        Ok(reason) if !reason.trim().is_empty() => {
            eprintln!("\n!!!!!!!! E2E TEST {test} NOT RUN: {why} (CONTINUUM_E2E_SKIP: {reason}) !!!!!!!!\n");
            false
        }
        _ => panic!(
            "E2E test {test} cannot run: {why}. Run `scripts/test`, which installs llama-server and its model, or set CONTINUUM_E2E_SKIP to the reason for skipping the end-to-end suite"
        ),
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A llama-server started by the script, stopped (by its PID file) when dropped.
pub struct Llama {
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Llama {
    /// Starts one on a free port; returns at once (it is loading).
    pub fn start() -> Llama {
        Llama::start_on(free_port())
    }

    /// Starts one on `port`; returns at once (it is loading).
    pub fn start_on(port: u16) -> Llama {
        let ok = script()
            .args(["start-llama", &port.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "llama-server did not start");
        Llama { port }
    }

    /// Starts one serving `/v1/rerank` (`--reranking`) and waits until it is healthy.
    pub fn reranker() -> Llama {
        Llama::ready_with(&["--reranking"])
    }

    /// Starts one for chat (`--chat`: no embeddings mode, 2 slots of 4096 tokens) and waits
    /// until it is healthy.
    pub fn chat() -> Llama {
        Llama::ready_with(&["--chat"])
    }

    /// Starts one for chat whose answers stop after `tokens` tokens (`-n`), and waits
    /// until it is healthy: for clients that set no `max_tokens`.
    pub fn chat_capped(tokens: u32) -> Llama {
        Llama::ready_with(&["--chat", "--n-predict", &tokens.to_string()])
    }

    /// Starts one with `start-llama`'s `options` on a free port and waits until it is
    /// healthy.
    fn ready_with(options: &[&str]) -> Llama {
        let port = free_port();
        let ok = script()
            .arg("start-llama")
            .arg(port.to_string())
            .args(options)
            .status()
            .unwrap()
            .success();
        assert!(ok, "llama-server did not start");
        let l = Llama { port };
        l.wait();
        l
    }

    /// Starts one and waits until it is healthy.
    pub fn ready() -> Llama {
        let l = Llama::start();
        l.wait();
        l
    }

    /// Waits until `/health` answers 200.
    pub fn wait(&self) {
        let ok = script()
            .args(["wait-llama", &self.port.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "llama-server on {} did not become healthy", self.port);
    }

    /// Its root URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops it now.
    pub fn stop(&self) {
        let _ = script()
            .args(["stop-llama", &self.port.to_string()])
            .status();
    }
}

impl Drop for Llama {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A redis-server started by the script.
pub struct Redis {
    /// `redis://127.0.0.1:PORT`.
    pub url: String,
    port: u16,
}

impl Redis {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> Redis {
        let port = free_port();
        assert!(script()
            .args(["start-redis", &port.to_string()])
            .status()
            .unwrap()
            .success());
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Redis {
            url: format!("redis://127.0.0.1:{port}"),
            port,
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let pid = format!(
            "{}/run/redis-{}.pid",
            std::env::var("CONTINUUM_E2E_CACHE").unwrap_or_else(|_| concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/target/e2e"
            )
            .into()),
            self.port
        );
        if let Ok(pid) = std::fs::read_to_string(&pid) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}
