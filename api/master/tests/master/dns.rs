//! The built-in DNS's shell: UDP and TCP on loopback answering from the applied state, and
//! Mesos-DNS's HTTP API on the router. What the records are is `corral-dns`'s tests.

use axum::http::{Method, StatusCode};
use corral_master::start_dns;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::support::TestMasters;

fn query(id: u16, name: &str, kind: u16) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.extend_from_slice(&[0, 0, kind as u8, 0, 1]);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn dns_answers_over_udp_and_tcp_from_the_applied_state() {
    let cluster = TestMasters::start(1).await;
    let master = cluster.masters[0].master.clone();
    let address = start_dns(master, "127.0.0.1:0".parse().unwrap()).await.expect("binds");

    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(&query(0x1234, "ns1.mesos", 1), address).await.unwrap();
    let mut buffer = [0u8; 512];
    let (length, _) = socket.recv_from(&mut buffer).await.unwrap();
    let reply = &buffer[..length];
    assert_eq!(&reply[..8], &[0x12, 0x34, 0x85, 0x00, 0, 1, 0, 1], "one answer");
    // The master's address is not an IP here, so ns1 is loopback.
    assert_eq!(&reply[length - 4..], &[127, 0, 0, 1]);

    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    for (id, name, rcode) in [(1u16, "nothing.marathon.mesos", 3u8), (2, "example.org", 5)] {
        let sent = query(id, name, 1);
        stream.write_all(&(sent.len() as u16).to_be_bytes()).await.unwrap();
        stream.write_all(&sent).await.unwrap();
        let mut length = [0u8; 2];
        stream.read_exact(&mut length).await.unwrap();
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply[..4], &[0, id as u8, 0x85, rcode], "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mesos_dns_http_api_answers_on_the_master_port() {
    let cluster = TestMasters::start(1).await;
    let answer = cluster.send(0, Method::GET, "/v1/version", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["Service"], "Mesos-DNS");

    let config = cluster.send(0, Method::GET, "/v1/config", None).await.body;
    assert_eq!(config["Domain"], "mesos");
    assert_eq!(config["TTL"], 5);
    assert_eq!(config["Masters"], json!(["master-1:5050"]));

    let hosts = cluster.send(0, Method::GET, "/v1/hosts/NS1.mesos", None).await;
    assert_eq!(hosts.status, StatusCode::OK);
    assert_eq!(hosts.body, json!([{"host": "ns1.mesos.", "ip": "127.0.0.1"}]));
    let none = cluster.send(0, Method::GET, "/v1/services/_web._tcp.marathon.mesos.", None).await;
    assert_eq!(none.body, json!([]));
    let enumerate = cluster.send(0, Method::GET, "/v1/enumerate", None).await;
    assert_eq!(enumerate.body, json!({"frameworks": []}));
}
