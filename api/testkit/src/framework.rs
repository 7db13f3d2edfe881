//! The pymesos framework (tests/python/pymesos_framework.py) as a child process whose
//! callbacks arrive as JSON lines.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The venv with the pinned client libraries, made by scripts/python-env.sh.
pub fn python() -> String {
    let root = crate::REPOSITORY;
    let output = Command::new(format!("{root}/scripts/python-env.sh"))
        .output()
        .expect("scripts/python-env.sh runs");
    assert!(output.status.success(), "python env: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8").trim().to_owned()
}

pub struct Framework {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Value>,
    /// Everything seen so far, in order.
    pub seen: Vec<Value>,
}

impl Framework {
    pub fn start(master: &str, tasks: u32, extra: &[&str]) -> Framework {
        let script =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/python/pymesos_framework.py");
        let mut child = Command::new(python())
            .arg(script)
            .args(["--master", master, "--tasks", &tasks.to_string()])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("pymesos framework starts");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take().expect("stdin");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    if sender.send(value).is_err() {
                        return;
                    }
                }
            }
        });
        Framework { child, stdin, lines, seen: Vec::new() }
    }

    /// Waits for a callback matching `wanted`, keeping everything seen on the way.
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(value) => {
                    self.seen.push(value.clone());
                    if wanted(&value) {
                        return value;
                    }
                }
                Err(_) => panic!(
                    "timed out waiting for the framework to see {what}; it saw {:#?}",
                    self.seen
                ),
            }
        }
    }

    pub fn tell(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("framework takes commands");
    }
}

impl Drop for Framework {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
