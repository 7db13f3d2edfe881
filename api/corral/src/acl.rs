//! `corral acl …`: access control from the command line, over `/corral/v1/acl`.
//!
//! The management token comes from `--token-file` or `CORRAL_TOKEN`, never from an argument
//! (arguments show in `ps` and shell history). Nothing here prints a secret except the token
//! text that `bootstrap` and `token create` return, once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use corral_client::{ClusterClient, Error};
use reqwest::Method;
use serde_json::{json, Value};

use crate::audit::table;
use crate::Output;

/// The variable a token is read from when there is no `--token-file`.
const TOKEN_VARIABLE: &str = "CORRAL_TOKEN";

#[derive(Subcommand)]
pub(crate) enum AclCommand {
    /// Creates the cluster's first management token (once per cluster) and prints it.
    Bootstrap {
        /// Write the token to this file (mode 0600) instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        target: AclTarget,
    },
    /// Tokens: create, list, revoke.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Policies in Mesos's ACL JSON: put, get, list, delete.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Basic credentials: import Mesos's `--credentials` file, list principals, delete one.
    Credentials {
        #[command(subcommand)]
        command: CredentialsCommand,
    },
    /// The auth mode: `off`, `permissive` or `enforce`.
    Mode {
        #[command(subcommand)]
        command: ModeCommand,
    },
}

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Creates a token and prints it (the only time its text is shown).
    Create {
        /// The name ACL rules match (default: the token's accessor).
        #[arg(long)]
        principal: Option<String>,
        /// `client` (rules decide) or `management` (everything).
        #[arg(long, default_value = "client", value_parser = ["client", "management"])]
        kind: String,
        #[arg(long)]
        description: Option<String>,
        /// Write the token to this file (mode 0600) instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        target: AclTarget,
    },
    /// Every token: accessor, principal, kind (never a secret).
    List {
        #[command(flatten)]
        target: AclTarget,
    },
    /// Revokes the token with this accessor id.
    Revoke {
        accessor: String,
        #[command(flatten)]
        target: AclTarget,
    },
}

#[derive(Subcommand)]
pub(crate) enum PolicyCommand {
    /// Creates or replaces policy NAME from a Mesos ACL JSON file.
    Put {
        name: String,
        file: PathBuf,
        #[command(flatten)]
        target: AclTarget,
    },
    /// Prints policy NAME as Mesos ACL JSON.
    Get {
        name: String,
        #[command(flatten)]
        target: AclTarget,
    },
    /// Every policy's name.
    List {
        #[command(flatten)]
        target: AclTarget,
    },
    Delete {
        name: String,
        #[command(flatten)]
        target: AclTarget,
    },
}

#[derive(Subcommand)]
pub(crate) enum CredentialsCommand {
    /// Imports Mesos's `--credentials` JSON file (`{"credentials": [{"principal", "secret"}]}`);
    /// the masters keep only argon2id hashes.
    Import {
        file: PathBuf,
        #[command(flatten)]
        target: AclTarget,
    },
    /// The principals that have a credential.
    List {
        #[command(flatten)]
        target: AclTarget,
    },
    Delete {
        principal: String,
        #[command(flatten)]
        target: AclTarget,
    },
}

#[derive(Subcommand)]
pub(crate) enum ModeCommand {
    Get {
        #[command(flatten)]
        target: AclTarget,
    },
    /// `off`, `permissive` (decide and count, refuse nothing) or `enforce`.
    Set {
        #[arg(value_parser = ["off", "permissive", "enforce"])]
        mode: String,
        #[command(flatten)]
        target: AclTarget,
    },
}

/// Which masters to ask, with which token, and how to print the answer.
#[derive(Args)]
pub(crate) struct AclTarget {
    /// Comma-separated masters, tried in turn; a follower redirects to the leader.
    #[arg(long, default_value = "127.0.0.1:5050")]
    master: String,
    /// A file holding the token (`crl_…`) to present; else the CORRAL_TOKEN variable.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Print the JSON the master answered.
    #[arg(long)]
    json: bool,
}

impl AclTarget {
    fn output(&self) -> Output {
        if self.json {
            return Output::Json;
        }
        Output::Table
    }

    fn token(&self) -> anyhow::Result<Option<String>> {
        if let Some(path) = &self.token_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read --token-file {}", path.display()))?;
            let token = text.trim();
            if token.is_empty() {
                bail!("--token-file {} is empty", path.display());
            }
            return Ok(Some(token.to_owned()));
        }
        match std::env::var(TOKEN_VARIABLE) {
            Ok(token) if !token.trim().is_empty() => Ok(Some(token.trim().to_owned())),
            Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => bail!("{TOKEN_VARIABLE} is not text"),
        }
    }

    /// A client presenting the token, if there is one (bootstrap needs none).
    fn client(&self) -> anyhow::Result<ClusterClient> {
        Ok(ClusterClient::with_token(&self.master, self.token()?, Duration::from_secs(60))?)
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let what = format!("{method} {path}");
        self.client()?.request_json(method, path, body).await.map_err(|error| explain(error, &what))
    }
}

/// Says what a refusal means for the person at the terminal, keeping the master's answer.
fn explain(error: Error, what: &str) -> anyhow::Error {
    let hint = match &error {
        Error::Status { status: 401, .. } => {
            "the master wants a valid token: give one with --token-file or CORRAL_TOKEN"
        }
        Error::Status { status: 403, .. } => {
            "the token was refused this: administering access control needs a management token"
        }
        Error::Status { status: 409, .. } if what.ends_with("/bootstrap") => {
            "this cluster was bootstrapped already; ask whoever holds its management token"
        }
        _ => "",
    };
    let error = anyhow::Error::new(error).context(format!("{what} failed"));
    if hint.is_empty() {
        return error;
    }
    error.context(hint)
}

pub(crate) async fn run(command: AclCommand) -> anyhow::Result<()> {
    match command {
        AclCommand::Bootstrap { out, target } => {
            let answer = target.call(Method::POST, "/corral/v1/acl/bootstrap", None).await?;
            print_created(&answer, out.as_deref(), target.output(), "bootstrapped the cluster")
        }
        AclCommand::Token { command } => token(command).await,
        AclCommand::Policy { command } => policy(command).await,
        AclCommand::Credentials { command } => credentials(command).await,
        AclCommand::Mode { command } => mode(command).await,
    }
}

async fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { principal, kind, description, out, target } => {
            let mut body = json!({"kind": kind});
            if let Some(principal) = principal {
                body["principal"] = json!(principal);
            }
            if let Some(description) = description {
                body["description"] = json!(description);
            }
            let answer = target.call(Method::POST, "/corral/v1/acl/tokens", Some(body)).await?;
            print_created(&answer, out.as_deref(), target.output(), "created a token")
        }
        TokenCommand::List { target } => {
            let answer = target.call(Method::GET, "/corral/v1/acl/tokens", None).await?;
            if target.output() == Output::Json {
                return print_json(&answer);
            }
            let tokens = list(&answer, "tokens")?;
            let fields = ["accessor", "principal", "kind", "description"];
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|token| {
                    fields
                        .iter()
                        .map(|field| token[*field].as_str().unwrap_or("-").to_owned())
                        .collect()
                })
                .collect();
            print!("{}", table(&["ACCESSOR", "PRINCIPAL", "KIND", "DESCRIPTION"], &rows));
            Ok(())
        }
        TokenCommand::Revoke { accessor, target } => {
            let path = format!("/corral/v1/acl/tokens/{accessor}");
            target.call(Method::DELETE, &path, None).await?;
            println!("revoked token {accessor}");
            Ok(())
        }
    }
}

async fn policy(command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Put { name, file, target } => {
            let document = read_json(&file)?;
            let path = format!("/corral/v1/acl/policies/{name}");
            let answer = target.call(Method::PUT, &path, Some(document)).await?;
            if target.output() == Output::Json {
                return print_json(&answer);
            }
            println!("policy {name} put from {}", file.display());
            Ok(())
        }
        PolicyCommand::Get { name, target } => {
            let path = format!("/corral/v1/acl/policies/{name}");
            print_json(&target.call(Method::GET, &path, None).await?)
        }
        PolicyCommand::List { target } => {
            let answer = target.call(Method::GET, "/corral/v1/acl/policies", None).await?;
            if target.output() == Output::Json {
                return print_json(&answer);
            }
            for policy in list(&answer, "policies")? {
                println!("{}", policy["name"].as_str().unwrap_or("-"));
            }
            Ok(())
        }
        PolicyCommand::Delete { name, target } => {
            let path = format!("/corral/v1/acl/policies/{name}");
            target.call(Method::DELETE, &path, None).await?;
            println!("deleted policy {name}");
            Ok(())
        }
    }
}

async fn credentials(command: CredentialsCommand) -> anyhow::Result<()> {
    match command {
        CredentialsCommand::Import { file, target } => {
            warn_if_readable_by_others(&file);
            let document = read_json(&file)?;
            let answer =
                target.call(Method::PUT, "/corral/v1/acl/credentials", Some(document)).await?;
            if target.output() == Output::Json {
                return print_json(&answer);
            }
            let principals = principals(&answer)?;
            println!("imported credentials for {}", principals.join(", "));
            Ok(())
        }
        CredentialsCommand::List { target } => {
            let answer = target.call(Method::GET, "/corral/v1/acl/credentials", None).await?;
            if target.output() == Output::Json {
                return print_json(&answer);
            }
            for principal in principals(&answer)? {
                println!("{principal}");
            }
            Ok(())
        }
        CredentialsCommand::Delete { principal, target } => {
            let path = format!("/corral/v1/acl/credentials/{principal}");
            target.call(Method::DELETE, &path, None).await?;
            println!("deleted the credential of {principal}");
            Ok(())
        }
    }
}

async fn mode(command: ModeCommand) -> anyhow::Result<()> {
    let (answer, target) = match command {
        ModeCommand::Get { target } => {
            (target.call(Method::GET, "/corral/v1/acl/mode", None).await?, target)
        }
        ModeCommand::Set { mode, target } => {
            let body = json!({"mode": mode});
            (target.call(Method::PUT, "/corral/v1/acl/mode", Some(body)).await?, target)
        }
    };
    if target.output() == Output::Json {
        return print_json(&answer);
    }
    let mode = answer["mode"].as_str().context("the master's answer names no mode")?;
    match answer["bootstrapped"].as_bool() {
        Some(false) => println!("{mode} (not bootstrapped)"),
        _ => println!("{mode}"),
    }
    Ok(())
}

/// A created token: its text once, to the terminal or to `out`.
fn print_created(
    answer: &Value,
    out: Option<&Path>,
    output: Output,
    done: &str,
) -> anyhow::Result<()> {
    let token = answer["token"].as_str().context("the master's answer holds no token")?;
    let accessor = answer["accessor"].as_str().unwrap_or("-");
    let principal = answer["principal"].as_str().unwrap_or("-");
    if let Some(out) = out {
        write_secret(out, token)?;
        if output == Output::Json {
            let mut shown = answer.clone();
            shown.as_object_mut().map(|fields| fields.remove("token"));
            return print_json(&shown);
        }
        println!("{done}: token {accessor} (principal {principal}) written to {}", out.display());
        return Ok(());
    }
    if output == Output::Json {
        return print_json(answer);
    }
    eprintln!("{done}: token {accessor} (principal {principal}); it is shown only now:");
    println!("{token}");
    Ok(())
}

/// Writes a token readable by its owner only, created that way (no moment of wider access).
fn write_secret(path: &Path, token: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    file.write_all(format!("{token}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Mesos warns about a world-readable credentials file; so does this.
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path) {
        if metadata.permissions().mode() & 0o004 != 0 {
            eprintln!("warning: {} is readable by every user of this machine", path.display());
        }
    }
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    // serde_json's message names a line and column, never the text around them, so a
    // broken credentials file does not print a secret.
    serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn list<'a>(answer: &'a Value, field: &str) -> anyhow::Result<&'a Vec<Value>> {
    answer[field].as_array().with_context(|| format!("the master's answer has no '{field}' list"))
}

fn principals(answer: &Value) -> anyhow::Result<Vec<&str>> {
    Ok(list(answer, "principals")?.iter().filter_map(Value::as_str).collect())
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
