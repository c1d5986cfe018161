//! Test harness for Tafel's end-to-end tests and benchmarks: real processes, real sockets.
//!
//! - [`procs`]: start, kill (-9), stop (SIGTERM) and restart the real `tafel` binary and private
//!   `redis-server` instances on free ports in temp folders.
//! - [`client`]: a small y-websocket client on yrs and tokio-tungstenite that can also misbehave
//!   (send raw bytes, ignore the UI's rules).
//! - [`api`]: tokens and HTTP calls.
//! - [`node`]: runs the real npm `y-websocket` client scenarios in `tests/node/yws.mjs`.
//! - [`proxy`]: a TCP proxy the test can cut and heal (a node cut off from Redis).

pub mod api;
pub mod client;
pub mod node;
pub mod procs;
pub mod proxy;

/// Polls `f` every 20 ms until it returns true or `timeout` passes.
pub async fn eventually(timeout: std::time::Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
