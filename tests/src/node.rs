//! Runs the real npm `y-websocket` client scenarios of `tests/node/yws.mjs` and returns their
//! final JSON line.

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;

pub fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// Runs `node yws.mjs <scenario> <args...>`; returns (exit ok, last stdout line as JSON).
pub async fn run(scenario: &str, args: &[&str]) -> (bool, Value) {
    let dir = node_dir();
    assert!(
        dir.join("node_modules/y-websocket").exists(),
        "tests/node/node_modules is missing: run `npm ci --prefix tests/node` (scripts/test does)"
    );
    let out = tokio::process::Command::new("node")
        .arg(dir.join("yws.mjs"))
        .arg(scenario)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("node must be on the PATH");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("");
    let json: Value = serde_json::from_str(last).unwrap_or_else(|_| {
        panic!(
            "yws.mjs {scenario} printed no JSON.\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), json)
}
