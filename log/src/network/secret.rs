//! The cluster secret: how a master proves to another that it is one, with or without TLS.
//!
//! Every master of a cluster is given the same secret (`--cluster-secret-file`). The secret
//! itself never travels: each Raft request a master sends carries
//! `Corral-Cluster-Auth: v1 <unix millis> <mac>`, where the MAC is blake3 keyed with a key
//! derived from the secret, over the version, the time, the method, the path and the blake3
//! hash of the body. A receiver that holds the secret recomputes it and compares in constant
//! time (`blake3::Hash` equality), and refuses a time further than [`MAX_CLOCK_SKEW`] from
//! its own clock. So an eavesdropper on a plain-HTTP link can neither forge a request nor
//! alter one; it can only replay a request it saw, unchanged, within the skew window. Raft
//! requests name their term, so an old one is refused by Raft itself; TLS
//! (`--tls-cert`) removes even that window.
//!
//! Pure but for [`now_millis`], the clock the shells pass in.

use std::fmt;

/// The header a master's Raft requests carry.
pub const CLUSTER_AUTH_HEADER: &str = "corral-cluster-auth";

/// How far a request's time may be from the receiver's clock (either way). Masters are
/// expected to keep their clocks within this of each other (NTP does far better).
pub const MAX_CLOCK_SKEW_MILLIS: u64 = 5 * 60 * 1000;

/// [`MAX_CLOCK_SKEW_MILLIS`] for documentation links.
pub const MAX_CLOCK_SKEW: std::time::Duration =
    std::time::Duration::from_millis(MAX_CLOCK_SKEW_MILLIS);

/// A secret shorter than this is refused: it must not be guessable offline from one MAC.
pub const MIN_SECRET_CHARS: usize = 32;

const VERSION: &str = "v1";
const KEY_CONTEXT: &str = "corral 2026-12 cluster secret: raft request MAC key";

/// The key derived from a cluster secret. Its `Debug` shows nothing of it.
#[derive(Clone)]
pub struct ClusterSecret {
    key: [u8; 32],
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("ClusterSecret(..)")
    }
}

/// Why a request's proof was not taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretRefusal {
    /// No `Corral-Cluster-Auth` header.
    Missing,
    /// A header that is not `v1 <millis> <64 hex digits>`.
    Malformed(&'static str),
    /// A MAC made with another secret (or over another request).
    WrongSecret,
    /// A time too far from the receiver's clock: a replay, or a clock far off.
    Stale { sent_millis: u64, now_millis: u64 },
}

impl fmt::Display for SecretRefusal {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRefusal::Missing => {
                write!(formatter, "the request carries no {CLUSTER_AUTH_HEADER} header: only masters of this cluster, given its --cluster-secret-file, may call Raft's routes")
            }
            SecretRefusal::Malformed(problem) => {
                write!(formatter, "the {CLUSTER_AUTH_HEADER} header is malformed: {problem}")
            }
            SecretRefusal::WrongSecret => {
                write!(formatter, "the {CLUSTER_AUTH_HEADER} header was not made with this cluster's secret (is every master given the same --cluster-secret-file?)")
            }
            SecretRefusal::Stale { sent_millis, now_millis } => write!(
                formatter,
                "the {CLUSTER_AUTH_HEADER} header is dated {sent_millis} ms since the epoch, more than {MAX_CLOCK_SKEW_MILLIS} ms from this master's clock ({now_millis}): a replayed request, or clocks that disagree"
            ),
        }
    }
}

impl ClusterSecret {
    /// The secret as written in its file (surrounding whitespace ignored).
    pub fn from_text(text: &str) -> Result<ClusterSecret, String> {
        let secret = text.trim();
        let length = secret.chars().count();
        if length < MIN_SECRET_CHARS {
            return Err(format!(
                "the cluster secret has {length} characters, fewer than {MIN_SECRET_CHARS} (make one with `openssl rand -hex 32`)"
            ));
        }
        Ok(ClusterSecret { key: blake3::derive_key(KEY_CONTEXT, secret.as_bytes()) })
    }

    fn mac(&self, sent_millis: u64, method: &str, path: &str, body: &[u8]) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        hasher.update(VERSION.as_bytes());
        hasher.update(b"\n");
        hasher.update(sent_millis.to_string().as_bytes());
        hasher.update(b"\n");
        hasher.update(method.as_bytes());
        hasher.update(b"\n");
        hasher.update(path.as_bytes());
        hasher.update(b"\n");
        hasher.update(blake3::hash(body).as_bytes());
        hasher.finalize()
    }

    /// The header value for a request sent at `now_millis`.
    pub fn sign(&self, now_millis: u64, method: &str, path: &str, body: &[u8]) -> String {
        format!("{VERSION} {now_millis} {}", self.mac(now_millis, method, path, body).to_hex())
    }

    /// Checks a request's header (`None`: it had none) at `now_millis`.
    pub fn verify(
        &self,
        now_millis: u64,
        header: Option<&[u8]>,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(), SecretRefusal> {
        let header = header.ok_or(SecretRefusal::Missing)?;
        let text = std::str::from_utf8(header).map_err(|_| SecretRefusal::Malformed("not text"))?;
        let mut parts = text.split(' ');
        let (Some(version), Some(sent), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SecretRefusal::Malformed("not three words: v1 <millis> <mac>"));
        };
        if version != VERSION {
            return Err(SecretRefusal::Malformed("an unknown version (this master knows v1)"));
        }
        let sent_millis: u64 =
            sent.parse().map_err(|_| SecretRefusal::Malformed("the time is not a number"))?;
        let mac = blake3::Hash::from_hex(mac)
            .map_err(|_| SecretRefusal::Malformed("the MAC is not 64 hex digits"))?;
        // Constant time: blake3::Hash's equality.
        if mac != self.mac(sent_millis, method, path, body) {
            return Err(SecretRefusal::WrongSecret);
        }
        if sent_millis.abs_diff(now_millis) > MAX_CLOCK_SKEW_MILLIS {
            return Err(SecretRefusal::Stale { sent_millis, now_millis });
        }
        Ok(())
    }
}

/// Milliseconds since the Unix epoch, as requests are signed and checked with.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::{ClusterSecret, SecretRefusal, MAX_CLOCK_SKEW_MILLIS};

    const TEXT: &str = "0123456789abcdef0123456789abcdef-test";
    const NOW: u64 = 1_800_000_000_000;

    fn secret() -> ClusterSecret {
        ClusterSecret::from_text(TEXT).expect("a long enough secret")
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_to_it_does_not() {
        let header = secret().sign(NOW, "POST", "/corral/raft/vote", b"body");
        let verify = |header: &str, method: &str, path: &str, body: &[u8]| {
            secret().verify(NOW, Some(header.as_bytes()), method, path, body)
        };
        assert_eq!(verify(&header, "POST", "/corral/raft/vote", b"body"), Ok(()));
        assert!(!header.contains(TEXT), "the secret never travels");
        let wrong = Err(SecretRefusal::WrongSecret);
        assert_eq!(verify(&header, "POST", "/corral/raft/vote", b"bodY"), wrong);
        assert_eq!(verify(&header, "POST", "/corral/raft/append", b"body"), wrong);
        assert_eq!(verify(&header, "GET", "/corral/raft/vote", b"body"), wrong);
        // Another time under the same MAC.
        let moved = header.replacen(&NOW.to_string(), &(NOW + 1).to_string(), 1);
        assert_eq!(verify(&moved, "POST", "/corral/raft/vote", b"body"), wrong);
        let other = ClusterSecret::from_text("another secret of at least thirty-two chars")
            .expect("long enough");
        let forged = other.sign(NOW, "POST", "/corral/raft/vote", b"body");
        assert_eq!(verify(&forged, "POST", "/corral/raft/vote", b"body"), wrong);
    }

    #[test]
    fn missing_malformed_and_stale_proofs_are_named() {
        let check = |header: Option<&str>, now: u64| {
            secret().verify(now, header.map(str::as_bytes), "POST", "/p", b"")
        };
        assert_eq!(check(None, NOW), Err(SecretRefusal::Missing));
        assert!(matches!(check(Some("v1 12"), NOW), Err(SecretRefusal::Malformed(_))));
        assert!(matches!(check(Some("v2 1 ab"), NOW), Err(SecretRefusal::Malformed(_))));
        assert!(matches!(check(Some("v1 x ab"), NOW), Err(SecretRefusal::Malformed(_))));
        assert!(matches!(check(Some("v1 1 zz"), NOW), Err(SecretRefusal::Malformed(_))));
        let header = secret().sign(NOW, "POST", "/p", b"");
        assert_eq!(check(Some(&header), NOW + MAX_CLOCK_SKEW_MILLIS), Ok(()));
        assert_eq!(check(Some(&header), NOW - MAX_CLOCK_SKEW_MILLIS), Ok(()));
        assert_eq!(
            check(Some(&header), NOW + MAX_CLOCK_SKEW_MILLIS + 1),
            Err(SecretRefusal::Stale {
                sent_millis: NOW,
                now_millis: NOW + MAX_CLOCK_SKEW_MILLIS + 1
            })
        );
    }

    #[test]
    fn short_secrets_are_refused_and_the_key_is_never_shown() {
        assert!(ClusterSecret::from_text("  short  ").is_err());
        assert_eq!(format!("{:?}", secret()), "ClusterSecret(..)");
    }
}
