//! `corral master --bootstrap-token-file`: the cluster bootstraps access control with a token
//! the operator made beforehand (kept in a secrets store, say), with no one racing to call
//! `POST /corral/v1/acl/bootstrap` first.
//!
//! Every master given the file tries when it leads, so whichever leads first bootstraps; the
//! log refuses a second `BootstrapAcl`, so the masters given it later, or restarted, change
//! nothing. A file naming a token the cluster does not hold (another bootstrap, a revoked
//! token) is said in the log: the cluster works on, since the file only ever mattered once.

use std::time::Duration;

use corral_log::ReadConsistency;
use corral_state::auth::{SecretHash, Token, TokenKind};
use corral_state::{Actor, Command, Rejection};

use crate::auth::parse_token;
use crate::master::{new_request_id, Master};

/// How long a leader that could not decide waits before trying again.
const RETRY: Duration = Duration::from_secs(1);

/// A token's accessor and secret, read from the file. No `Debug`: the secret must not reach
/// a log line by accident.
pub struct BootstrapToken {
    accessor: String,
    secret: String,
}

impl BootstrapToken {
    /// The file's text: one token, `crl_<accessor>_<secret>`, as `bootstrap` and `corral acl
    /// token create` print them (make one with `echo crl_$(openssl rand -hex 8)_$(openssl
    /// rand -hex 32)`).
    pub fn parse(text: &str) -> Result<BootstrapToken, String> {
        let (accessor, secret) = parse_token(text).ok_or_else(|| {
            "must hold one token, crl_<accessor>_<secret> (make one with: echo crl_$(openssl rand -hex 8)_$(openssl rand -hex 32))".to_owned()
        })?;
        let fitting = |text: &str, lengths: std::ops::RangeInclusive<usize>| {
            lengths.contains(&text.len())
                && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if !fitting(&accessor, 1..=64) {
            return Err(
                "the accessor (between crl_ and the next _) must be 1 to 64 letters, digits or '-'"
                    .to_owned(),
            );
        }
        if !fitting(&secret, 32..=128) {
            return Err(
                "the secret (after the accessor's _) must be 32 to 128 letters, digits or '-'"
                    .to_owned(),
            );
        }
        Ok(BootstrapToken { accessor, secret })
    }
}

/// What one look as the leader found.
enum Look {
    /// Bootstrapped with this token (now or before): nothing left to do.
    Done,
    /// Bootstrapped with something else: said once, nothing left to do.
    Mismatch,
    /// Could not tell (leadership moved, the log was busy): try again when leading.
    Retry,
}

/// Runs until the cluster is seen bootstrapped, each time this master leads.
pub async fn keep_bootstrapped(master: Master, token: BootstrapToken) {
    let mut metrics = master.node().metrics();
    loop {
        while !master.node().is_leader() {
            if metrics.changed().await.is_err() {
                return;
            }
        }
        match look(&master, &token).await {
            Look::Done | Look::Mismatch => return,
            Look::Retry => tokio::time::sleep(RETRY).await,
        }
    }
}

async fn look(master: &Master, token: &BootstrapToken) -> Look {
    // Linearizable: a new leader may not have applied its predecessor's bootstrap yet.
    let seen = master
        .read_state(ReadConsistency::Linearizable, |state| {
            let auth = state.auth();
            let held = auth
                .token(&token.accessor)
                .is_some_and(|held| held.secret_hash.verifies(&token.secret));
            (auth.is_bootstrapped(), held)
        })
        .await;
    match seen {
        Ok((true, held)) => return judged(held, &token.accessor),
        Ok((false, _)) => {}
        Err(error) => {
            tracing::debug!(%error, "bootstrap token file: the state could not be read; retrying");
            return Look::Retry;
        }
    }
    let command = Command::BootstrapAcl {
        token: Token {
            accessor: token.accessor.clone(),
            principal: "bootstrap".to_owned(),
            kind: TokenKind::Management,
            secret_hash: SecretHash::of(&token.secret),
            description: "bootstrap token (--bootstrap-token-file)".to_owned(),
        },
    };
    match master.propose(new_request_id(), Actor::Leader, command).await {
        Ok(committed) => match committed.outcome.rejection() {
            None => {
                tracing::info!(
                    accessor = %token.accessor,
                    "bootstrapped access control with the token of --bootstrap-token-file"
                );
                Look::Done
            }
            // Another master's bootstrap came first: read again and compare.
            Some(Rejection::AlreadyBootstrapped) => Look::Retry,
            Some(rejection) => {
                tracing::error!(%rejection, "the log refused the bootstrap from --bootstrap-token-file");
                Look::Mismatch
            }
        },
        Err(error) => {
            tracing::debug!(%error, "bootstrap token file: the bootstrap was not committed; retrying");
            Look::Retry
        }
    }
}

fn judged(held: bool, accessor: &str) -> Look {
    if held {
        tracing::info!(%accessor, "access control is bootstrapped with the token of --bootstrap-token-file");
        return Look::Done;
    }
    tracing::warn!(
        %accessor,
        "--bootstrap-token-file names a token this cluster does not hold (it was bootstrapped with another, or the token was revoked); the file is ignored"
    );
    Look::Mismatch
}
