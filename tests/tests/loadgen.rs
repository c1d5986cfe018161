//! CI smoke of the benchmark (issue 9): the load generator runs every scenario for a few
//! seconds at a tiny scale against the raw relay and against Tafel, every edit and presence
//! update arrives, and `loadgen report` makes the table of `docs/benchmarks.md` from the results.

use std::process::Command;

use serde_json::Value;
use tafel_tests::procs::{free_port, Tafel, TEST_SECRET};

/// Runs `loadgen run` with `args`; returns its result lines by scenario.
fn loadgen(out: &std::path::Path, args: &[&str]) -> Vec<(String, Value)> {
    let status = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("run")
        .args(["--scale", "0.01", "--secs", "2", "--out"])
        .arg(out)
        .args(args)
        .env("TAFEL_JWT_SECRET", TEST_SECRET)
        .status()
        .expect("run loadgen");
    assert!(status.success(), "loadgen failed: {status}");
    std::fs::read_to_string(out)
        .expect("results")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
        .map(|v| {
            (
                format!(
                    "{} {}",
                    v["label"].as_str().unwrap_or(""),
                    v["scenario"].as_str().unwrap_or("")
                ),
                v["result"].clone(),
            )
        })
        .collect()
}

fn result<'a>(lines: &'a [(String, Value)], key: &str) -> &'a Value {
    &lines
        .iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no {key} in {lines:?}"))
        .1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_smoke_against_the_relay_and_tafel() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("results.jsonl");
    let port = free_port();
    let mut relay = Command::new(env!("CARGO_BIN_EXE_relay"))
        .arg(format!("127.0.0.1:{port}"))
        .spawn()
        .expect("start relay");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let relay_pid = relay.id().to_string();
    loadgen(
        &out,
        &[
            "--label",
            "relay",
            "--url",
            &format!("ws://127.0.0.1:{port}"),
            "--pid",
            &relay_pid,
            "--stateless",
            "--scenarios",
            "S1,S6",
        ],
    );
    let _ = relay.kill();
    let _ = relay.wait();

    let t = Tafel::start_embedded();
    let pid = t.pid().expect("pid").to_string();
    let lines = loadgen(
        &out,
        &[
            "--label",
            "Tafel",
            "--tafel",
            &t.http(),
            "--pid",
            &pid,
            "--scenarios",
            "S1,S2,S3,S4,S6",
        ],
    );
    for key in ["relay S1", "Tafel S1", "Tafel S2", "relay S6", "Tafel S6"] {
        let r = result(&lines, key);
        assert_eq!(r["delivered"].as_f64(), Some(100.0), "{key}: {r}");
        assert!(
            r["latency"]["n"].as_u64() > Some(0),
            "{key}: no latency samples: {r}"
        );
    }
    assert!(
        result(&lines, "Tafel S1")["meter"]["peak_rss"].as_u64() > Some(1 << 20),
        "the server's RSS was read from /proc"
    );
    let s3 = result(&lines, "Tafel S3");
    assert_eq!(
        s3["open"], s3["connections"],
        "S3: idle connections closed: {s3}"
    );
    let s4 = result(&lines, "Tafel S4");
    assert_eq!(
        s4["complete"], s4["joiners"],
        "S4: a joiner did not get all: {s4}"
    );

    let report = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("report")
        .arg(&out)
        .output()
        .expect("report");
    let table = String::from_utf8_lossy(&report.stdout);
    assert!(table.contains("\n| scenario | relay | Tafel |"), "{table}");
    for row in ["| S1 ", "| S3 ", "| S6 "] {
        assert!(table.contains(row), "no {row} row:\n{table}");
    }
}
