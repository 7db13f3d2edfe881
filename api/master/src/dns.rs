//! The built-in DNS: Mesos-DNS's names answered over UDP and TCP from the records of the
//! applied state (`corral_dns`), rebuilt at most once per applied log index, so an answer is
//! never older than the state this master has applied. Every master answers, leader or not.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};

use corral_dns::{answer, DnsConfig, Masters, Records};
use corral_log::ReadConsistency;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::error::ApiError;
use crate::master::Master;

/// The DNS configuration (set once at start-up) and the records of the last applied index.
#[derive(Default)]
pub struct Dns {
    config: OnceLock<DnsConfig>,
    cache: Mutex<Option<(u64, Arc<Records>)>>,
}

/// What a UDP answer may weigh without EDNS (RFC 1035).
const UDP_LIMIT: usize = 512;

impl Master {
    /// Sets the DNS domain and TTL; the first call wins (start-up makes the only one).
    pub fn configure_dns(&self, config: DnsConfig) {
        if self.inner.dns.config.set(config).is_err() {
            tracing::warn!("the DNS configuration was already set; keeping the first");
        }
    }

    pub(crate) fn dns_config(&self) -> DnsConfig {
        self.inner.dns.config.get().cloned().unwrap_or_default()
    }

    /// The records of the state as applied now, built again only when the applied index
    /// moved since the last build.
    pub(crate) async fn dns_records(&self) -> Result<Arc<Records>, ApiError> {
        let node = self.node();
        let index = node.applied_index();
        if let Some((built_at, records)) = &*self.inner.dns.cache.lock().expect("not poisoned") {
            if *built_at == index {
                return Ok(records.clone());
            }
        }
        let status = node.status();
        let parse = |address: &str| address.parse::<SocketAddr>().ok();
        let masters = Masters {
            leader: status.leader_address.as_deref().and_then(parse),
            members: status.members.iter().filter_map(|member| parse(&member.address)).collect(),
            this: parse(&self.inner.address)
                .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |address| address.ip()),
        };
        let config = self.dns_config();
        // The SOA serial is 32 bits; it only has to change, and wrapping still changes it.
        let serial = index as u32;
        // The state read may be newer than `index`: the next query then builds once more,
        // never serves older records.
        let records = self
            .read_state(ReadConsistency::Local, |state| {
                Records::build(state, &masters, &config, serial)
            })
            .await?;
        let records = Arc::new(records);
        *self.inner.dns.cache.lock().expect("not poisoned") = Some((index, records.clone()));
        Ok(records)
    }
}

/// Binds `address` for UDP and TCP (the same port for both; port 0 picks one) and answers
/// DNS there until the process ends; gives the address bound. A bad query gets FORMERR; one
/// too short to answer is dropped.
pub async fn start_dns(master: Master, address: SocketAddr) -> std::io::Result<SocketAddr> {
    let udp = UdpSocket::bind(address).await?;
    let bound = udp.local_addr()?;
    let tcp = TcpListener::bind(bound).await?;
    tracing::info!(address = %bound, "DNS serving over UDP and TCP");
    let tcp_master = master.clone();
    tokio::spawn(async move {
        loop {
            match tcp.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(serve_tcp(tcp_master.clone(), stream));
                }
                Err(error) => tracing::warn!(%error, "DNS: accepting a TCP connection failed"),
            }
        }
    });
    tokio::spawn(serve_udp(master, udp));
    Ok(bound)
}

async fn serve_udp(master: Master, udp: UdpSocket) {
    let mut buffer = vec![0u8; 4096];
    loop {
        let (length, peer) = match udp.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(error) => {
                tracing::warn!(%error, "DNS: receiving over UDP failed");
                continue;
            }
        };
        let Some(reply) = reply(&master, &buffer[..length], UDP_LIMIT).await else { continue };
        if let Err(error) = udp.send_to(&reply, peer).await {
            tracing::debug!(%error, %peer, "DNS: a UDP answer was not sent");
        }
    }
}

async fn serve_tcp(master: Master, mut stream: TcpStream) {
    loop {
        let mut length = [0u8; 2];
        if stream.read_exact(&mut length).await.is_err() {
            return;
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(length))];
        if stream.read_exact(&mut query).await.is_err() {
            return;
        }
        let Some(reply) = reply(&master, &query, usize::from(u16::MAX)).await else { return };
        let length = (reply.len() as u16).to_be_bytes();
        if stream.write_all(&length).await.is_err() || stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}

async fn reply(master: &Master, query: &[u8], limit: usize) -> Option<Vec<u8>> {
    let records = match master.dns_records().await {
        Ok(records) => records,
        Err(error) => {
            tracing::warn!(?error, "DNS: the state could not be read; not answering");
            return None;
        }
    };
    answer(&records, query, limit).ok()
}
