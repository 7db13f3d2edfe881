//! `corral acl …` and `corral master --bootstrap-token-file` against real master processes:
//! bootstrap, tokens, a policy, imported credentials and the enforce mode through the command
//! line (asking followers, whose 307s the command follows with its token), and then no secret
//! byte in any master's data directory or log, a backup, or `corral replay`'s output.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use corral_testkit::cluster::Cluster;
use corral_testkit::eventually;

const LONG: Duration = Duration::from_secs(60);

/// `corral ARGS` with `CORRAL_TOKEN` set to `token` (or unset).
fn corral(args: &[&str], token: Option<&str>) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_corral"));
    command.args(args).env_remove("CORRAL_TOKEN");
    if let Some(token) = token {
        command.env("CORRAL_TOKEN", token);
    }
    tokio::task::block_in_place(|| command.output()).expect("corral runs")
}

fn stdout_of(args: &[&str], token: Option<&str>) -> String {
    let output = corral(args, token);
    assert!(
        output.status.success(),
        "corral {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// The stderr of a `corral` run that must fail.
fn failure_of(args: &[&str], token: Option<&str>) -> String {
    let output = corral(args, token);
    assert!(!output.status.success(), "corral {args:?} succeeded: {output:?}");
    String::from_utf8(output.stderr).expect("utf-8")
}

/// The secret part of a token's text, `crl_<accessor>_<secret>`.
fn secret_of(token: &str) -> &str {
    token.rsplit('_').next().expect("a token has a secret")
}

async fn status_of(
    cluster: &Cluster,
    master: usize,
    path: &str,
    token: Option<&str>,
) -> StatusCode {
    let mut request = cluster.http.get(cluster.masters[master].url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("the master answers").status()
}

/// Waits until every master has applied the creation of `token`: a master authenticates
/// from its own state, so a follower that has not heard of a token yet answers 401.
async fn known_everywhere(cluster: &Cluster, token: &str) {
    eventually(LONG, "the token known to every master", || async {
        for master in 0..cluster.masters.len() {
            // Guarded once bootstrapped: 401 for an unknown token, 200 or 403 for a known one.
            if status_of(cluster, master, "/corral/v1/acl/mode", Some(token)).await == 401 {
                return None;
            }
        }
        Some(())
    })
    .await;
}

/// Every file under `directory`, with its bytes.
fn files_under(directory: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![directory.to_path_buf()];
    while let Some(directory) = pending.pop() {
        for entry in std::fs::read_dir(&directory).expect("a readable directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("a readable file");
                files.push((path, bytes));
            }
        }
    }
    files
}

/// Where in `haystack` any of `needles` occurs, by name.
fn hits(name: &str, haystack: &[u8], needles: &[&str]) -> Vec<String> {
    needles
        .iter()
        .filter(|needle| haystack.windows(needle.len()).any(|window| window == needle.as_bytes()))
        .map(|needle| format!("{name} holds {}…", &needle[..8]))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn corral_acl_bootstraps_makes_tokens_and_policies_and_enforces_and_no_secret_is_kept() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader().await;
    let follower = cluster.follower_of(leader);
    let via_follower = cluster.masters[follower].address.clone();
    let via_follower = via_follower.as_str();
    let directory = tempfile::tempdir().expect("temp dir");

    assert_eq!(
        stdout_of(&["acl", "mode", "get", "--master", via_follower], None),
        "off (not bootstrapped)\n"
    );
    let root_file = directory.path().join("root.token");
    let root_flag = root_file.display().to_string();
    let said =
        stdout_of(&["acl", "bootstrap", "--master", via_follower, "--out", &root_flag], None);
    assert!(said.contains("written to"), "{said}");
    let root = std::fs::read_to_string(&root_file).expect("the token file").trim().to_owned();
    assert!(root.starts_with("crl_"), "a token in the file");
    known_everywhere(&cluster, &root).await;
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&root_file).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only its owner reads the token file");
    }
    let again = failure_of(&["acl", "bootstrap", "--master", via_follower], None);
    assert!(again.contains("bootstrapped already") && again.contains("409"), "{again}");

    // A token from the file, through a follower: the 307 is followed with the token.
    let fw = stdout_of(
        &[
            "acl",
            "token",
            "create",
            "--principal",
            "fw",
            "--master",
            via_follower,
            "--token-file",
            &root_flag,
        ],
        None,
    );
    let fw = fw.trim().to_owned();
    known_everywhere(&cluster, &fw).await;
    assert!(fw.starts_with("crl_") && fw != root, "{fw}");
    let refused =
        failure_of(&["acl", "token", "create", "--principal", "x", "--master", via_follower], None);
    assert!(refused.contains("POST /corral/v1/acl/tokens failed"), "{refused}");
    let refused = failure_of(
        &["acl", "token", "create", "--principal", "x", "--master", via_follower],
        Some(&fw),
    );
    assert!(refused.contains("management token") && refused.contains("403"), "{refused}");

    let policy_file = directory.path().join("acls.json");
    std::fs::write(
        &policy_file,
        r#"{"register_frameworks": [{"principals": {"values": ["fw"]}, "roles": {"type": "ANY"}}],
            "view_frameworks": [{"principals": {"type": "ANY"}, "users": {"type": "ANY"}}]}"#,
    )
    .expect("policy file");
    let policy_flag = policy_file.display().to_string();
    // The leader first: a master reads access control from its own state, and these reads
    // follow writes (the follower path is the one above).
    let first = cluster.masters[leader].address.clone();
    let others = cluster.addresses().into_iter().filter(|address| *address != first);
    let all = std::iter::once(first.clone()).chain(others).collect::<Vec<_>>().join(",");
    let put = stdout_of(
        &["acl", "policy", "put", "frameworks", &policy_flag, "--master", &all],
        Some(&root),
    );
    assert!(put.starts_with("policy frameworks put"), "{put}");
    let got: Value = serde_json::from_str(&stdout_of(
        &["acl", "policy", "get", "frameworks", "--master", &all],
        Some(&root),
    ))
    .expect("the policy as JSON");
    assert_eq!(got["register_frameworks"][0]["principals"]["values"][0], "fw", "{got}");
    std::fs::write(&policy_file, "{not json").expect("policy file");
    let broken = failure_of(
        &["acl", "policy", "put", "broken", &policy_flag, "--master", &all],
        Some(&root),
    );
    assert!(broken.contains("is not JSON"), "{broken}");

    let basic_secret = "correct-horse-battery-staple-0123456789";
    let credentials_file = directory.path().join("credentials.json");
    std::fs::write(
        &credentials_file,
        format!(r#"{{"credentials": [{{"principal": "pymesos", "secret": "{basic_secret}"}}]}}"#),
    )
    .expect("credentials file");
    let imported = stdout_of(
        &[
            "acl",
            "credentials",
            "import",
            &credentials_file.display().to_string(),
            "--master",
            &all,
        ],
        Some(&root),
    );
    assert_eq!(imported, "imported credentials for pymesos\n");
    assert_eq!(
        stdout_of(&["acl", "credentials", "list", "--master", &all], Some(&root)),
        "pymesos\n"
    );

    assert_eq!(
        stdout_of(&["acl", "mode", "set", "enforce", "--master", &all], Some(&root)),
        "enforce\n"
    );
    assert_eq!(stdout_of(&["acl", "mode", "get", "--master", &all], Some(&root)), "enforce\n");
    // Enforced on every master: reads need a live identity.
    eventually(LONG, "enforce on every master", || async {
        for master in 0..cluster.masters.len() {
            if status_of(&cluster, master, "/master/state", None).await != 401 {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert_eq!(
        status_of(&cluster, follower, "/master/state?consistency=local", Some(&fw)).await,
        200
    );
    let basic = cluster
        .http
        .get(cluster.masters[follower].url("/master/state?consistency=local"))
        .basic_auth("pymesos", Some(basic_secret))
        .send()
        .await
        .expect("the master answers");
    assert_eq!(basic.status(), 200, "the imported credential works");

    let listed = stdout_of(&["acl", "token", "list", "--master", &all], Some(&root));
    assert!(listed.starts_with("ACCESSOR") && listed.contains(" fw "), "{listed}");
    assert!(!listed.contains(secret_of(&fw)) && !listed.contains(secret_of(&root)), "{listed}");
    let fw_accessor = fw.split('_').nth(1).expect("an accessor");
    assert_eq!(
        stdout_of(&["acl", "token", "revoke", fw_accessor, "--master", &all], Some(&root)),
        format!("revoked token {fw_accessor}\n")
    );
    eventually(LONG, "the revoked token refused", || async {
        (status_of(&cluster, follower, "/master/state?consistency=local", Some(&fw)).await == 401)
            .then_some(())
    })
    .await;
    let refused = failure_of(&["acl", "token", "list", "--master", &all], Some(&fw));
    assert!(refused.contains("401") && refused.contains("valid token"), "{refused}");

    // No secret byte anywhere the cluster keeps or prints things.
    let secrets = [secret_of(&root), secret_of(&fw), basic_secret];
    let mut found = Vec::new();
    let backup = directory.path().join("backup.corral");
    // The backup command has no token: the mode goes back to off for it.
    assert_eq!(stdout_of(&["acl", "mode", "set", "off", "--master", &all], Some(&root)), "off\n");
    stdout_of(&["snapshot", "save", &backup.display().to_string(), "--master", &all], None);
    found.extend(hits("the backup", &std::fs::read(&backup).expect("the backup"), &secrets));
    let stopped = follower;
    cluster.masters[stopped].kill();
    let data_dir = cluster.masters[stopped].data_dir().display().to_string();
    for json in [false, true] {
        let mut args = vec!["replay", "--data-dir", data_dir.as_str()];
        if json {
            args.push("--json");
        }
        found.extend(hits("replay's output", stdout_of(&args, None).as_bytes(), &secrets));
    }
    for master in &cluster.masters {
        for (path, bytes) in files_under(master.data_dir()) {
            found.extend(hits(&path.display().to_string(), &bytes, &secrets));
        }
        let log = std::fs::read(master.log_path()).expect("the master's log");
        found.extend(hits(&master.log_path().display().to_string(), &log, &secrets));
    }
    assert_eq!(found, Vec::<String>::new(), "secrets kept or printed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bootstrap_token_file_bootstraps_once_and_a_stale_one_is_only_logged() {
    let directory = tempfile::tempdir().expect("temp dir");
    let token_file = directory.path().join("bootstrap.token");
    let token = format!("crl_0123456789abcdef_{}", "5ec7e7".repeat(8));
    std::fs::write(&token_file, format!("{token}\n")).expect("token file");
    {
        use std::os::unix::fs::PermissionsExt;
        let readable = std::fs::Permissions::from_mode(0o644);
        std::fs::set_permissions(&token_file, readable).expect("chmod");
    }
    let flag = token_file.display().to_string();
    let mut cluster = Cluster::start_with(3, &["--bootstrap-token-file", &flag]);
    let leader = cluster.leader().await;
    // Before the bootstrap the list is open and empty; after it, it needs the token.
    eventually(LONG, "bootstrapped with the file's token", || async {
        let url = cluster.masters[leader].url("/corral/v1/acl/tokens");
        let response = cluster.http.get(url).bearer_auth(&token).send().await.ok()?;
        let listed: Value = response.json().await.ok()?;
        (listed["tokens"][0]["accessor"] == "0123456789abcdef").then_some(())
    })
    .await;
    assert_eq!(status_of(&cluster, leader, "/corral/v1/acl/tokens", None).await, 401);
    // The file is readable by others (0644): each master given it says so.
    let log = std::fs::read_to_string(cluster.masters[leader].log_path()).expect("a log");
    assert!(log.contains("--bootstrap-token-file may be read by other users"), "{log}");
    let addresses = cluster.addresses().join(",");
    let listed = stdout_of(&["acl", "token", "list", "--master", &addresses], Some(&token));
    assert_eq!(listed.lines().count(), 2, "one token: {listed}");
    assert!(listed.contains("0123456789abcdef") && listed.contains("management"), "{listed}");

    // Another master leads, with the same file: nothing changes, and it says so.
    cluster.masters[leader].kill();
    let next = cluster.leader().await;
    cluster.masters[leader].restart();
    eventually(LONG, "the new leader's look at the bootstrap", || async {
        let log = std::fs::read_to_string(cluster.masters[next].log_path()).ok()?;
        log.contains("bootstrapped with the token of --bootstrap-token-file").then_some(())
    })
    .await;
    let listed = stdout_of(&["acl", "token", "list", "--master", &addresses], Some(&token));
    assert_eq!(listed.lines().count(), 2, "still one token: {listed}");

    // The file's token revoked (by another management token), every master restarted: the
    // leader says the file is stale, and the cluster serves on.
    let other = stdout_of(
        &["acl", "token", "create", "--kind", "management", "--master", &addresses],
        Some(&token),
    );
    let other = other.trim().to_owned();
    known_everywhere(&cluster, &other).await;
    stdout_of(
        &["acl", "token", "revoke", "0123456789abcdef", "--master", &addresses],
        Some(&other),
    );
    for master in &mut cluster.masters {
        master.restart();
    }
    let leader = cluster.leader().await;
    eventually(LONG, "the stale file said", || async {
        let log = std::fs::read_to_string(cluster.masters[leader].log_path()).ok()?;
        log.contains("names a token this cluster does not hold").then_some(())
    })
    .await;
    assert_eq!(status_of(&cluster, leader, "/corral/v1/acl/tokens", Some(&other)).await, 200);
    assert_eq!(status_of(&cluster, leader, "/corral/v1/acl/tokens", Some(&token)).await, 401);
    for master in &cluster.masters {
        let log = std::fs::read(master.log_path()).expect("the master's log");
        assert_eq!(hits("a master's log", &log, &[secret_of(&token)]), Vec::<String>::new());
    }
}
