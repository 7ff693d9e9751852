//! The binary runner: the real `dispatchctl` with only the environment a test gives it, what
//! it printed, and a child process that a failed test never leaves running.

use std::collections::HashMap;
use std::process::{Command, Output};

use serde_json::Value;

/// The real binary with only `env` (and PATH) for its environment, in a temporary directory.
pub fn command(env: &HashMap<String, String>, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dispatchctl"));
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .current_dir(std::env::temp_dir());
    c
}

pub async fn run(env: &HashMap<String, String>, args: &[&str]) -> Output {
    let mut c = command(env, args);
    tokio::task::spawn_blocking(move || c.output().expect("run dispatchctl"))
        .await
        .expect("join")
}

pub fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A child process that is killed if the test fails before it is waited for, so a failed
/// test never leaves a daemon running.
pub struct KillOnDrop(pub Option<std::process::Child>);

impl KillOnDrop {
    pub fn take(&mut self) -> std::process::Child {
        self.0.take().expect("child taken once")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `send` of one SMS, answering in JSON: the command most terminal tests start with.
pub const SEND_SMS: &[&str] = &[
    "send",
    "--channel",
    "sms",
    "--to",
    "+905551234567",
    "--content",
    "hi",
    "-o",
    "json",
];
