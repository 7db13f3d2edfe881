//! Transport security for masters and agents: rustls with the ring provider only (no
//! aws-lc, no OpenSSL), loaded from the PEM files of `--tls-cert`, `--tls-key` and `--tls-ca`.
//!
//! - One CA per cluster. A certificate says what its holder is by a DNS name in its SAN:
//!   `master.<cluster>` or `agent.<cluster>` (the cluster is `--cluster-id`). A client checks
//!   that the server it dialled names the role it expects, whatever address it dialled, so
//!   certificates need not list addresses for Corral's own traffic (they may, for curl).
//! - Servers ask for a client certificate but let a client without one in: each route
//!   decides (`peer_is`); Raft wants a master, the agent-facing API an agent. A certificate
//!   that is presented must chain to the CA, or the handshake fails.
//! - [`Tls::watch`] re-reads the three files every [`POLL`] and on SIGHUP; a changed, valid
//!   set is used from the next handshake on (server and client side alike), an invalid one
//!   is logged and the old set kept. Connections already open keep what they agreed.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum_server::tls_rustls::RustlsConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

/// How often [`Tls::watch`] looks at the files.
pub const POLL: Duration = Duration::from_secs(1);

/// The three PEM files a master or an agent is given.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// This process's certificate chain, its own certificate first.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The cluster's CA: what every peer's certificate must chain to.
    pub ca: PathBuf,
}

/// What a certificate's holder is in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Master,
    Agent,
}

impl Role {
    /// The DNS name a certificate of this role carries in its SAN.
    pub fn name(self, cluster: &str) -> String {
        match self {
            Role::Master => format!("master.{cluster}"),
            Role::Agent => format!("agent.{cluster}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {flag} {path}: {cause}")]
    Read { flag: &'static str, path: PathBuf, cause: std::io::Error },
    #[error("{flag} {path}: {problem}")]
    Invalid { flag: &'static str, path: PathBuf, problem: String },
}

/// Whether a reload found new files.
#[derive(Debug, PartialEq, Eq)]
pub enum Reloaded {
    Changed,
    Unchanged,
}

/// Everything read from one version of the files.
struct Material {
    bytes: [Vec<u8>; 3],
    key: Arc<CertifiedKey>,
    server_verifier: Arc<WebPkiServerVerifier>,
    server_config: Arc<rustls::ServerConfig>,
}

struct Inner {
    files: TlsFiles,
    cluster: String,
    own: Role,
    provider: Arc<CryptoProvider>,
    material: RwLock<Arc<Material>>,
    /// What axum-server accepts with; swapped on reload.
    acceptor: RustlsConfig,
}

/// A process's TLS identity and trust, reloadable. Cheap to clone.
#[derive(Clone)]
pub struct Tls {
    inner: Arc<Inner>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Tls")
            .field("cert", &self.inner.files.cert)
            .field("role", &self.inner.own)
            .field("cluster", &self.inner.cluster)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|cause| TlsError::Read { flag, path: path.to_owned(), cause })
}

impl Tls {
    /// Reads and checks the files: the key matches the certificate, the certificate chains
    /// to the CA and names `own` for `cluster`. A process given files that would be refused
    /// by its peers fails here, at start, rather than at every handshake.
    pub fn load(files: TlsFiles, cluster: &str, own: Role) -> Result<Tls, TlsError> {
        let provider = provider();
        let bytes = [
            read("--tls-cert", &files.cert)?,
            read("--tls-key", &files.key)?,
            read("--tls-ca", &files.ca)?,
        ];
        let material = Arc::new(material(&files, cluster, own, &provider, bytes)?);
        let acceptor = RustlsConfig::from_config(material.server_config.clone());
        let inner = Inner {
            files,
            cluster: cluster.to_owned(),
            own,
            provider,
            material: RwLock::new(material),
            acceptor,
        };
        Ok(Tls { inner: Arc::new(inner) })
    }

    pub fn cluster(&self) -> &str {
        &self.inner.cluster
    }

    fn current(&self) -> Arc<Material> {
        self.inner.material.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Re-reads the files; new and valid ones serve every handshake from now on.
    pub fn reload(&self) -> Result<Reloaded, TlsError> {
        let files = &self.inner.files;
        let bytes = [
            read("--tls-cert", &files.cert)?,
            read("--tls-key", &files.key)?,
            read("--tls-ca", &files.ca)?,
        ];
        if bytes == self.current().bytes {
            return Ok(Reloaded::Unchanged);
        }
        let fresh = Arc::new(material(
            files,
            &self.inner.cluster,
            self.inner.own,
            &self.inner.provider,
            bytes,
        )?);
        self.inner.acceptor.reload_from_config(fresh.server_config.clone());
        *self.inner.material.write().unwrap_or_else(PoisonError::into_inner) = fresh;
        Ok(Reloaded::Changed)
    }

    /// Reloads every [`POLL`] and on SIGHUP until the process ends, logging what changed
    /// and what was refused (the files in use stay in use).
    pub fn watch(&self) -> tokio::task::JoinHandle<()> {
        let tls = self.clone();
        tokio::spawn(async move {
            let mut hangup = match tokio::signal::unix::signal(
                tokio::signal::unix::SignalKind::hangup(),
            ) {
                Ok(signal) => Some(signal),
                Err(error) => {
                    tracing::warn!(%error, "cannot watch for SIGHUP; certificates reload by polling only");
                    None
                }
            };
            loop {
                let hangup_received = async {
                    match hangup.as_mut() {
                        Some(signal) => {
                            signal.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                tokio::select! {
                    () = hangup_received => {},
                    () = tokio::time::sleep(POLL) => {},
                }
                match tls.reload() {
                    Ok(Reloaded::Changed) => tracing::info!(
                        cert = %tls.inner.files.cert.display(),
                        "reloaded the TLS certificate, key and CA; new connections use them"
                    ),
                    Ok(Reloaded::Unchanged) => {}
                    Err(error) => tracing::warn!(%error, "kept the TLS files in use"),
                }
            }
        })
    }

    /// A reqwest client builder that presents this process's certificate and trusts a
    /// server only if its certificate chains to the CA and names `peer` for this cluster.
    pub fn client(&self, peer: Role, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        let verifier = Arc::new(RoleVerifier { tls: self.clone(), peer });
        let resolver = Arc::new(CurrentIdentity { tls: self.clone() });
        let config = rustls::ClientConfig::builder_with_provider(self.inner.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring's default provider supports the default protocol versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(resolver);
        builder.use_preconfigured_tls(config)
    }

    /// Whether a client's certificate (as the handshake verified it against the CA) names
    /// `role` for this cluster.
    pub fn peer_is(&self, peer_certificates: &[Vec<u8>], role: Role) -> bool {
        peer_names(peer_certificates, &role.name(&self.inner.cluster))
    }

    /// Serves `app` over TLS on `listener` until `shutdown` resolves, then lets requests in
    /// flight finish. Handlers see the client's certificates as `Extension<PeerCertificates>`.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        app: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let handle = axum_server::Handle::new();
        let stopping = handle.clone();
        tokio::spawn(async move {
            shutdown.await;
            stopping.graceful_shutdown(None);
        });
        let app = app.layer(axum::middleware::from_fn(peer_certificates));
        axum_server::from_tcp_rustls(listener.into_std()?, self.inner.acceptor.clone())?
            .handle(handle)
            .serve(app.into_make_service_with_connect_info::<SocketAddr>())
            .await
    }
}

/// The DER certificates a TLS client presented (empty without one, and on a plain listener
/// there is no such extension at all).
#[derive(Clone, Debug, Default)]
pub struct PeerCertificates(pub Arc<Vec<Vec<u8>>>);

impl PeerCertificates {
    pub fn names(&self, name: &str) -> bool {
        peer_names(&self.0, name)
    }
}

/// Turns axum-server's connection information into our own extension, so routes do not
/// depend on the server crate.
async fn peer_certificates(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let certificates = request
        .extensions()
        .get::<Arc<axum_server::tls::TlsInfo>>()
        .map(|info| info.peer_certificates.clone())
        .unwrap_or_default();
    request.extensions_mut().insert(PeerCertificates(Arc::new(certificates)));
    next.run(request).await
}

/// Whether the first certificate carries `name` in its SAN.
pub fn peer_names(peer_certificates: &[Vec<u8>], name: &str) -> bool {
    let Some(first) = peer_certificates.first() else {
        return false;
    };
    let Ok(server_name) = ServerName::try_from(name) else {
        return false;
    };
    let der = CertificateDer::from(first.as_slice());
    match webpki::EndEntityCert::try_from(&der) {
        Ok(certificate) => certificate.verify_is_valid_for_subject_name(&server_name).is_ok(),
        Err(_) => false,
    }
}

fn invalid(flag: &'static str, path: &Path, problem: impl fmt::Display) -> TlsError {
    TlsError::Invalid { flag, path: path.to_owned(), problem: problem.to_string() }
}

fn material(
    files: &TlsFiles,
    cluster: &str,
    own: Role,
    provider: &Arc<CryptoProvider>,
    bytes: [Vec<u8>; 3],
) -> Result<Material, TlsError> {
    let [cert_pem, key_pem, ca_pem] = &bytes;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert_pem).collect::<Result<_, _>>().map_err(|error| {
            invalid("--tls-cert", &files.cert, format!("not PEM certificates: {error}"))
        })?;
    if chain.is_empty() {
        return Err(invalid("--tls-cert", &files.cert, "holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|error| {
        invalid("--tls-key", &files.key, format!("not a PEM private key: {error}"))
    })?;
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem) {
        let ca = ca.map_err(|error| {
            invalid("--tls-ca", &files.ca, format!("not PEM certificates: {error}"))
        })?;
        roots.add(ca).map_err(|error| invalid("--tls-ca", &files.ca, error))?;
    }
    if roots.is_empty() {
        return Err(invalid("--tls-ca", &files.ca, "holds no certificate"));
    }
    let roots = Arc::new(roots);
    let certified =
        CertifiedKey::from_der(chain.clone(), key.clone_key(), provider).map_err(|error| {
            invalid("--tls-key", &files.key, format!("does not fit --tls-cert: {error}"))
        })?;
    let client_verifier =
        WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .allow_unauthenticated()
            .build()
            .map_err(|error| invalid("--tls-ca", &files.ca, error))?;
    client_verifier.verify_client_cert(&chain[0], &chain[1..], UnixTime::now()).map_err(
        |error| invalid("--tls-cert", &files.cert, format!("is not valid under --tls-ca: {error}")),
    )?;
    let own_name = own.name(cluster);
    if !peer_names(&[chain[0].to_vec()], &own_name) {
        return Err(invalid(
            "--tls-cert",
            &files.cert,
            format!("does not name {own_name} in its subject alternative names"),
        ));
    }
    let server_verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|error| invalid("--tls-ca", &files.ca, error))?;
    let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring's default provider supports the default protocol versions")
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain, key)
        .map_err(|error| invalid("--tls-key", &files.key, error))?;
    Ok(Material {
        bytes,
        key: Arc::new(certified),
        server_verifier,
        server_config: Arc::new(server_config),
    })
}

/// Checks a server's certificate against the current CA and for the role expected, not for
/// the address dialled.
struct RoleVerifier {
    tls: Tls,
    peer: Role,
}

impl fmt::Debug for RoleVerifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("RoleVerifier").field("peer", &self.peer).finish()
    }
}

impl ServerCertVerifier for RoleVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _dialled: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = self.peer.name(&self.tls.inner.cluster);
        let expected = ServerName::try_from(name.as_str())
            .map_err(|error| rustls::Error::General(format!("{name} is no DNS name: {error}")))?;
        self.tls.current().server_verifier.verify_server_cert(
            end_entity,
            intermediates,
            &expected,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.tls.inner.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.tls.inner.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.tls.inner.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Presents whatever certificate the files hold now.
struct CurrentIdentity {
    tls: Tls,
}

impl fmt::Debug for CurrentIdentity {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_struct("CurrentIdentity").finish_non_exhaustive()
    }
}

impl ResolvesClientCert for CurrentIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.tls.current().key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
