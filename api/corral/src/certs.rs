//! `corral certs`: a test CA and certificates for a cluster's masters and agents, in the
//! layout the `--tls-*` flags take. A directory that already holds `ca-key.pem` keeps its
//! CA and gets new certificates under it (more agents, or a certificate to rotate to).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

#[derive(Args)]
pub(crate) struct CertsArgs {
    /// The cluster's id (`--cluster-id` of masters and agents): certificates name
    /// `master.<cluster>` and `agent.<cluster>`.
    #[arg(long, default_value = "corral")]
    cluster: String,
    /// Where to write `ca.pem`, `ca-key.pem`, `master-N.pem`, `master-N-key.pem`,
    /// `agent-N.pem`, `agent-N-key.pem`.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 3)]
    masters: u32,
    #[arg(long, default_value_t = 1)]
    agents: u32,
    /// More host names or IP addresses every certificate names (for curl and browsers;
    /// Corral's own traffic checks only the role names). `localhost` and 127.0.0.1 always.
    #[arg(long, value_delimiter = ',')]
    hosts: Vec<String>,
}

pub(crate) fn run(args: &CertsArgs) -> anyhow::Result<()> {
    crate::cluster_id(args.cluster.clone())?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create --out {}", args.out.display()))?;
    let ca_key_path = args.out.join("ca-key.pem");
    let (ca_key, reused) = if ca_key_path.exists() {
        let pem = std::fs::read_to_string(&ca_key_path)
            .with_context(|| format!("cannot read {}", ca_key_path.display()))?;
        (
            KeyPair::from_pem(&pem)
                .with_context(|| format!("{} is no key", ca_key_path.display()))?,
            true,
        )
    } else {
        (KeyPair::generate().context("cannot generate the CA's key")?, false)
    };
    // The same name and key make the same issuer: certificates made now chain to a CA made
    // earlier in this directory.
    let ca = ca_params(&args.cluster)?.self_signed(&ca_key).context("cannot sign the CA")?;
    if !reused {
        write(&args.out, "ca.pem", &ca.pem())?;
        write(&args.out, "ca-key.pem", &ca_key.serialize_pem())?;
    }
    let roles = [("master", args.masters), ("agent", args.agents)];
    for (role, count) in roles {
        for number in 1..=count {
            let mut names = vec![format!("{role}.{}", args.cluster), "localhost".to_owned()];
            names.push("127.0.0.1".to_owned());
            names.extend(args.hosts.iter().cloned());
            let mut params = CertificateParams::new(names).context("a name in --hosts")?;
            params.distinguished_name = DistinguishedName::new();
            params
                .distinguished_name
                .push(DnType::CommonName, format!("{role}-{number}.{}", args.cluster));
            params.key_usages =
                vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
            // Masters and agents both serve and dial.
            params.extended_key_usages =
                vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
            let key = KeyPair::generate().context("cannot generate a key")?;
            let certificate =
                params.signed_by(&key, &ca, &ca_key).context("cannot sign a certificate")?;
            write(&args.out, &format!("{role}-{number}.pem"), &certificate.pem())?;
            write(&args.out, &format!("{role}-{number}-key.pem"), &key.serialize_pem())?;
        }
    }
    let ca_note = if reused { "the CA already there" } else { "a new CA" };
    println!(
        "corral certs: {} master and {} agent certificates for cluster '{}' under {ca_note}, in {}",
        args.masters,
        args.agents,
        args.cluster,
        args.out.display()
    );
    Ok(())
}

fn ca_params(cluster: &str) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new()).context("CA parameters")?;
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, format!("Corral test CA for {cluster}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

/// Keys are readable by their owner only.
fn write(directory: &Path, name: &str, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = directory.join(name);
    let mode = if name.ends_with("-key.pem") { 0o600 } else { 0o644 };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}
