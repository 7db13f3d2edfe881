//! DNS messages in and out, as bytes.

use corral_dns::{answer, WireError};
use corral_state::model::TaskState;
use corral_state::TaskId;
use corral_testkit::state::FRAMEWORK;

use super::records::{cluster, launch, records};

fn name(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in text.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A query with recursion desired, as `dig` sends one.
fn query(id: u16, text: &str, kind: u16) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&name(text));
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out
}

fn serving() -> corral_dns::Records {
    let (mut builder, agent_id) = cluster();
    launch(&mut builder, &agent_id, "shop_web.1", 31_005, false);
    builder.report(FRAMEWORK.into(), &TaskId::new("shop_web.1"), TaskState::Running, None);
    records(&builder)
}

#[test]
fn an_a_query_gets_the_task_address_with_the_ttl() {
    let records = serving();
    let sent = query(0xbeef, "Web-Shop.marathon.mesos", 1);
    let reply = answer(&records, &sent, 512).unwrap();

    let mut expected = vec![0xbe, 0xef, 0x85, 0x00, 0, 1, 0, 1, 0, 0, 0, 0];
    expected.extend_from_slice(&sent[12..]);
    expected.extend_from_slice(&name("Web-Shop.marathon.mesos"));
    expected.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 0, 0, 7]);
    assert_eq!(reply, expected);
}

#[test]
fn an_srv_query_names_the_host_port_and_the_canonical_target() {
    let records = serving();
    let sent = query(7, "_web-shop._tcp.marathon.mesos", 33);
    let reply = answer(&records, &sent, 512).unwrap();
    let mut expected = vec![0, 7, 0x85, 0x00, 0, 1, 0, 1, 0, 0, 0, 0];
    expected.extend_from_slice(&sent[12..]);
    expected.extend_from_slice(&name("_web-shop._tcp.marathon.mesos"));
    let target = name("web-shop-packw-s1.marathon.mesos");
    expected.extend_from_slice(&[0, 33, 0, 1, 0, 0, 0, 5, 0, (6 + target.len()) as u8]);
    expected.extend_from_slice(&[0, 0, 0, 1, 0x79, 0x1d]);
    expected.extend_from_slice(&target);
    assert_eq!(reply, expected);
}

#[test]
fn unknown_names_are_nxdomain_with_the_soa_and_other_types_are_nodata() {
    let records = serving();
    let reply = answer(&records, &query(1, "nothing.marathon.mesos", 1), 512).unwrap();
    assert_eq!(&reply[2..12], &[0x85, 0x03, 0, 1, 0, 0, 0, 1, 0, 0], "NXDOMAIN, one SOA");
    let reply = answer(&records, &query(1, "web-shop.marathon.mesos", 28), 512).unwrap();
    assert_eq!(&reply[2..12], &[0x85, 0x00, 0, 1, 0, 0, 0, 1, 0, 0], "AAAA: NODATA, one SOA");
    let reply = answer(&records, &query(1, "mesos", 6), 512).unwrap();
    assert_eq!(&reply[2..12], &[0x85, 0x00, 0, 1, 0, 1, 0, 0, 0, 0], "the SOA itself");
}

#[test]
fn names_outside_the_domain_are_refused_and_bad_messages_get_formerr() {
    let records = serving();
    let reply = answer(&records, &query(1, "example.com", 1), 512).unwrap();
    assert_eq!(&reply[2..4], &[0x85, 0x05], "REFUSED: no recursion");

    let mut cut = query(9, "web-shop.marathon.mesos", 1);
    cut.truncate(20);
    assert_eq!(
        answer(&records, &cut, 512).unwrap(),
        vec![0, 9, 0x85, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    let mut looped = query(9, "a", 1);
    looped.truncate(12);
    looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    assert_eq!(&answer(&records, &looped, 512).unwrap()[2..4], &[0x85, 0x01]);
    assert_eq!(answer(&records, &[1, 2, 3], 512), Err(WireError::TooShort));
}

#[test]
fn an_answer_too_big_for_udp_is_truncated_and_whole_over_tcp() {
    let records = serving();
    let sent = query(3, "web-shop.marathon.mesos", 255);
    let whole = answer(&records, &sent, 65_535).unwrap();
    assert_eq!(&whole[2..8], &[0x85, 0x00, 0, 1, 0, 1]);
    let cut = answer(&records, &sent, whole.len() - 1).unwrap();
    assert_eq!(&cut[2..8], &[0x87, 0x00, 0, 1, 0, 0], "TC set, no records");
}
