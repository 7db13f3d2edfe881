//! `/files/*`: Mesos's semantics, and access that never leaves a sandbox, whatever a task
//! puts in it.

use axum::http::StatusCode;
use corral_agent::daemon::OnStop;
use corral_agent::http::MAX_READ_LENGTH;
use corral_state::model::TaskState;
use serde_json::json;

use crate::running::{encode, TestAgent};
use crate::support::shell_task;

/// What a hostile or careless task leaves in its sandbox.
const SANDBOX_SETUP: &str = "echo hello > out.txt; mkdir sub; echo deep > sub/inner.txt; \
    head -c 100000 /dev/zero | tr '\\000' a > big.txt; \
    ln -s /etc escape-dir; ln -s /etc/passwd escape-file; ln -s out.txt inner-link; \
    touch ready; while true; do sleep 0.1; done";

async fn sandbox_task(agent: &TestAgent, task_id: &str) -> String {
    agent.launch(shell_task(task_id, "cpus:0.1;mem:32", SANDBOX_SETUP));
    agent.master.wait_for_state(task_id, TaskState::Running).await;
    let sandbox = agent.sandbox(task_id);
    crate::support::eventually("the task to set its sandbox up", || sandbox.join("ready").exists())
        .await;
    sandbox.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_read_and_download_follow_mesos() {
    let agent = TestAgent::start("files-mesos", OnStop::KillTasks).await;
    let sandbox = sandbox_task(&agent, "files-task").await;
    let path = |rest: &str| encode(&format!("{sandbox}/{rest}"));

    let (status, listing) =
        agent.get_json(&format!("/files/browse?path={}", encode(&sandbox))).await;
    assert_eq!(status, StatusCode::OK, "{listing}");
    let names: Vec<&str> =
        listing.as_array().unwrap().iter().map(|entry| entry["path"].as_str().unwrap()).collect();
    let expected: Vec<String> = [
        "big.txt",
        "escape-dir",
        "escape-file",
        "inner-link",
        "out.txt",
        "ready",
        "stderr",
        "stdout",
        "sub",
    ]
    .iter()
    .map(|name| format!("{sandbox}/{name}"))
    .collect();
    assert_eq!(names, expected);
    let entry = |name: &str| {
        listing
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == format!("{sandbox}/{name}"))
            .unwrap()
    };
    assert_eq!(entry("out.txt")["size"], 6);
    assert!(entry("out.txt")["mode"].as_str().unwrap().starts_with("-rw"), "{listing}");
    assert!(entry("sub")["mode"].as_str().unwrap().starts_with('d'));
    assert!(
        entry("escape-dir")["mode"].as_str().unwrap().starts_with('l'),
        "links are not followed"
    );
    assert_eq!(entry("out.txt")["uid"], "root");
    for key in ["nlink", "mtime", "gid"] {
        assert!(!entry("out.txt")[key].is_null(), "{key}");
    }

    // Mesos's virtual path names the same sandbox.
    let virtual_root =
        format!("/frameworks/{}/executors/files-task/runs/latest", agent.framework_id());
    let (status, listing) = agent.get_json(&format!("/files/browse?path={virtual_root}/sub")).await;
    assert_eq!(status, StatusCode::OK, "{listing}");
    assert_eq!(listing[0]["path"], format!("{virtual_root}/sub/inner.txt"));
    let (status, read) =
        agent.get_json(&format!("/files/read?path={virtual_root}/sub/inner.txt&offset=0")).await;
    assert_eq!((status, read), (StatusCode::OK, json!({"data": "deep\n", "offset": 0})));

    let read = |query: String| {
        let agent = &agent;
        async move { agent.get_json(&format!("/files/read?{query}")).await }
    };
    assert_eq!(
        read(format!("path={}&offset=0", path("out.txt"))).await,
        (StatusCode::OK, json!({"data": "hello\n", "offset": 0}))
    );
    assert_eq!(
        read(format!("path={}&offset=2&length=3", path("out.txt"))).await,
        (StatusCode::OK, json!({"data": "llo", "offset": 2}))
    );
    // No offset, or -1: the size, where a follower starts.
    assert_eq!(
        read(format!("path={}&offset=-1", path("out.txt"))).await,
        (StatusCode::OK, json!({"data": "", "offset": 6}))
    );
    assert_eq!(
        read(format!("path={}", path("out.txt"))).await,
        (StatusCode::OK, json!({"data": "", "offset": 6}))
    );
    assert_eq!(
        read(format!("path={}&offset=100", path("out.txt"))).await,
        (StatusCode::OK, json!({"data": "", "offset": 6}))
    );
    assert_eq!(
        read(format!("path={}&offset=0&length=-1", path("out.txt"))).await,
        (StatusCode::OK, json!({"data": "hello\n", "offset": 0}))
    );
    // A link inside the sandbox is followed.
    assert_eq!(
        read(format!("path={}&offset=0", path("inner-link"))).await,
        (StatusCode::OK, json!({"data": "hello\n", "offset": 0}))
    );
    // Reads are capped.
    let (status, big) = read(format!("path={}&offset=0", path("big.txt"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(big["data"].as_str().unwrap().len() as u64, MAX_READ_LENGTH);
    let (_, rest) = read(format!("path={}&offset={MAX_READ_LENGTH}", path("big.txt"))).await;
    assert_eq!(
        rest["data"].as_str().unwrap().len() as u64,
        MAX_READ_LENGTH.min(100_000 - MAX_READ_LENGTH)
    );

    let (status, error) = read(format!("path={}&offset=0", encode(&sandbox))).await;
    assert_eq!((status, error["field"].clone()), (StatusCode::BAD_REQUEST, json!("path")));
    let (status, error) = agent.get_json(&format!("/files/browse?path={}", path("out.txt"))).await;
    assert_eq!((status, error["field"].clone()), (StatusCode::BAD_REQUEST, json!("path")));

    let (status, body) = agent.get(&format!("/files/download?path={}", path("out.txt"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"hello\n");
    let response = reqwest::get(format!(
        "http://{}/files/download?path={}",
        agent.running().http_address(),
        path("big.txt")
    ))
    .await
    .expect("download");
    assert_eq!(
        response.headers()["content-disposition"].to_str().unwrap(),
        "attachment; filename=\"big.txt\""
    );
    assert_eq!(response.headers()["content-type"].to_str().unwrap(), "application/octet-stream");
    assert_eq!(response.bytes().await.expect("body").len(), 100_000);
    let (status, _) = agent.get(&format!("/files/download?path={}", path("sub"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_never_leaves_a_sandbox() {
    let agent = TestAgent::start("files-confined", OnStop::KillTasks).await;
    let sandbox = sandbox_task(&agent, "confined-task").await;
    let framework_dir = agent.sandbox("confined-task").parent().unwrap().display().to_string();

    let cases: Vec<(String, StatusCode)> = vec![
        // `..`, even when it would land back inside the sandbox.
        (format!("{sandbox}/sub/../out.txt"), StatusCode::FORBIDDEN),
        (format!("{sandbox}/../../../meta/agent.json"), StatusCode::FORBIDDEN),
        // Links the task made that lead out.
        (format!("{sandbox}/escape-file"), StatusCode::FORBIDDEN),
        (format!("{sandbox}/escape-dir/passwd"), StatusCode::FORBIDDEN),
        (format!("{sandbox}/escape-dir"), StatusCode::FORBIDDEN),
        // Absolute paths elsewhere, the agent's own files among them.
        ("/etc/passwd".to_owned(), StatusCode::NOT_FOUND),
        (format!("{}/meta/agent.json", agent.work_dir.path().display()), StatusCode::NOT_FOUND),
        (framework_dir, StatusCode::NOT_FOUND),
        // A relative path, an unknown file, a sandbox no task has.
        ("stdout".to_owned(), StatusCode::NOT_FOUND),
        (format!("{sandbox}/no-such-file"), StatusCode::NOT_FOUND),
        (
            format!("/frameworks/{}/executors/nobody/runs/latest/stdout", agent.framework_id()),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (path, expected) in cases {
        for route in ["read", "browse", "download"] {
            let uri = format!("/files/{route}?path={}&offset=0", encode(&path));
            let (status, body) = agent.get_json(&uri).await;
            assert_eq!(status, expected, "{uri}: {body}");
            assert_eq!(body["field"], "path", "{uri}: {body}");
            assert!(body["message"].as_str().unwrap().contains(&path), "{uri}: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tasks_stdout_is_read_as_it_grows() {
    let agent = TestAgent::start("files-follow", OnStop::KillTasks).await;
    agent.launch(shell_task(
        "follow-task",
        "cpus:0.1;mem:32",
        "i=0; while [ $i -lt 400 ]; do echo line $i; i=$((i+1)); sleep 0.02; done; sleep 600",
    ));
    agent.master.wait_for_state("follow-task", TaskState::Running).await;
    let stdout = encode(&agent.sandbox("follow-task").join("stdout").display().to_string());

    // As `corral task log --follow` does: from the start, then from wherever the data ended.
    let mut offset = 0u64;
    let mut text = String::new();
    let mut reads_with_data = 0;
    let deadline = tokio::time::Instant::now() + crate::support::DEADLINE;
    while !text.contains("line 399\n") {
        assert!(tokio::time::Instant::now() < deadline, "stdout stopped growing at:\n{text}");
        let (status, read) =
            agent.get_json(&format!("/files/read?path={stdout}&offset={offset}")).await;
        assert_eq!(status, StatusCode::OK, "{read}");
        assert_eq!(read["offset"].as_u64(), Some(offset), "{read}");
        let data = read["data"].as_str().unwrap();
        if !data.is_empty() {
            reads_with_data += 1;
        }
        offset += data.len() as u64;
        text.push_str(data);
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    let expected: String = (0..400).map(|i| format!("line {i}\n")).collect();
    assert_eq!(text, expected);
    assert!(reads_with_data > 5, "the file grew while it was read ({reads_with_data} reads)");
    let (_, end) = agent.get_json(&format!("/files/read?path={stdout}&offset=-1")).await;
    assert_eq!(end["offset"].as_u64(), Some(expected.len() as u64));
}
