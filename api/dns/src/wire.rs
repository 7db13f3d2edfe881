//! The DNS message format (RFC 1035, SRV from RFC 2782): one question in, the answer out.
//! No compression is written (it is optional); compressed names in a query are followed.

use crate::records::{RecordData, Records};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordType {
    A,
    Ns,
    Soa,
    Aaaa,
    Srv,
    Any,
    Other(u16),
}

impl RecordType {
    fn from_code(code: u16) -> RecordType {
        match code {
            1 => RecordType::A,
            2 => RecordType::Ns,
            6 => RecordType::Soa,
            28 => RecordType::Aaaa,
            33 => RecordType::Srv,
            255 => RecordType::Any,
            other => RecordType::Other(other),
        }
    }

    fn matches(self, data: &RecordData) -> bool {
        matches!(
            (self, data),
            (RecordType::Any, _)
                | (RecordType::A, RecordData::A { .. })
                | (RecordType::Ns, RecordData::Ns { .. })
                | (RecordType::Soa, RecordData::Soa { .. })
                | (RecordType::Srv, RecordData::Srv { .. })
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Question {
    /// As sent, without the final dot.
    pub name: String,
    pub kind: RecordType,
    pub class: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Not even a header: nothing to answer.
    TooShort,
    Malformed(&'static str),
}

const FORMERR: u16 = 1;
const NXDOMAIN: u16 = 3;
const NOTIMP: u16 = 4;
const REFUSED: u16 = 5;
const CLASS_IN: u16 = 1;
const CLASS_ANY: u16 = 255;

/// The reply to `query` from `records`, at most `limit` bytes (512 over UDP, 65535 over
/// TCP): an answer that does not fit is sent without records and truncated (TC), so the
/// client asks again over TCP. `Err` only for bytes too short to carry an id.
pub fn answer(records: &Records, query: &[u8], limit: usize) -> Result<Vec<u8>, WireError> {
    if query.len() < 12 {
        return Err(WireError::TooShort);
    }
    let id = u16::from_be_bytes([query[0], query[1]]);
    let flags = u16::from_be_bytes([query[2], query[3]]);
    if flags & 0x8000 != 0 {
        return Err(WireError::Malformed("a response, not a query"));
    }
    let opcode = (flags >> 11) & 0xf;
    let recursion_desired = flags & 0x0100;
    let reply_flags = |rcode: u16| 0x8000 | (opcode << 11) | 0x0400 | recursion_desired | rcode;
    let qdcount = u16::from_be_bytes([query[4], query[5]]);
    if opcode != 0 {
        return Ok(header_only(id, reply_flags(NOTIMP)));
    }
    if qdcount != 1 {
        return Ok(header_only(id, reply_flags(FORMERR)));
    }
    let Ok((question, question_end)) = read_question(query) else {
        return Ok(header_only(id, reply_flags(FORMERR)));
    };
    let question_bytes = &query[12..question_end];
    if !records.in_domain(&question.name)
        || (question.class != CLASS_IN && question.class != CLASS_ANY)
    {
        return Ok(message(id, reply_flags(REFUSED), question_bytes, &[], &[]));
    }
    let soa = records
        .at(&records.domain)
        .into_iter()
        .flatten()
        .find(|data| matches!(data, RecordData::Soa { .. }))
        .map(|data| (records.domain.clone(), data.clone()));
    let Some(found) = records.at(&question.name) else {
        let authority: Vec<_> = soa.into_iter().collect();
        return Ok(message(id, reply_flags(NXDOMAIN), question_bytes, &[], &authority));
    };
    let owner = format!("{}.", question.name.trim_end_matches('.'));
    let answers: Vec<(String, RecordData)> = found
        .iter()
        .filter(|data| question.kind.matches(data))
        .map(|data| (owner.clone(), data.clone()))
        .collect();
    // The name exists but has no record of this type: NOERROR with the SOA (NODATA).
    let authority: Vec<_> = if answers.is_empty() { soa.into_iter().collect() } else { Vec::new() };
    let full =
        message_with_ttl(id, reply_flags(0), question_bytes, &answers, &authority, records.ttl);
    if full.len() <= limit {
        return Ok(full);
    }
    Ok(message_with_ttl(id, reply_flags(0) | 0x0200, question_bytes, &[], &[], records.ttl))
}

fn header_only(id: u16, flags: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    out
}

fn message(
    id: u16,
    flags: u16,
    question: &[u8],
    answers: &[(String, RecordData)],
    authority: &[(String, RecordData)],
) -> Vec<u8> {
    message_with_ttl(id, flags, question, answers, authority, 0)
}

fn message_with_ttl(
    id: u16,
    flags: u16,
    question: &[u8],
    answers: &[(String, RecordData)],
    authority: &[(String, RecordData)],
    ttl: u32,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&(authority.len() as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(question);
    for (name, data) in answers {
        write_record(&mut out, name, data, ttl);
    }
    for (name, data) in authority {
        // A negative answer is cached for the SOA's minimum (RFC 2308); ours follows the TTL.
        write_record(&mut out, name, data, ttl);
    }
    out
}

fn write_record(out: &mut Vec<u8>, name: &str, data: &RecordData, ttl: u32) {
    write_name(out, name);
    let kind: u16 = match data {
        RecordData::A { .. } => 1,
        RecordData::Ns { .. } => 2,
        RecordData::Soa { .. } => 6,
        RecordData::Srv { .. } => 33,
    };
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out.extend_from_slice(&ttl.to_be_bytes());
    let mut rdata = Vec::new();
    match data {
        RecordData::A { ip } => rdata.extend_from_slice(&ip.octets()),
        RecordData::Ns { host } => write_name(&mut rdata, host),
        RecordData::Soa { mname, rname, serial, refresh, retry, expire, minimum } => {
            write_name(&mut rdata, mname);
            write_name(&mut rdata, rname);
            for value in [serial, refresh, retry, expire, minimum] {
                rdata.extend_from_slice(&value.to_be_bytes());
            }
        }
        RecordData::Srv { priority, weight, port, target } => {
            for value in [priority, weight, port] {
                rdata.extend_from_slice(&value.to_be_bytes());
            }
            write_name(&mut rdata, target);
        }
    }
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
}

/// Names built from labels of at most 63 bytes; a longer one is cut (labels are made so by
/// `records::label`, and the domain is checked when configured).
fn write_name(out: &mut Vec<u8>, name: &str) {
    for part in name.trim_end_matches('.').split('.').filter(|part| !part.is_empty()) {
        let bytes = &part.as_bytes()[..part.len().min(63)];
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    out.push(0);
}

/// The question and where it ends in `query`.
fn read_question(query: &[u8]) -> Result<(Question, usize), WireError> {
    let (name, end) = read_name(query, 12)?;
    let fixed = query.get(end..end + 4).ok_or(WireError::Malformed("question cut short"))?;
    let kind = RecordType::from_code(u16::from_be_bytes([fixed[0], fixed[1]]));
    let class = u16::from_be_bytes([fixed[2], fixed[3]]);
    Ok((Question { name, kind, class }, end + 4))
}

/// A name at `offset`, following compression pointers (at most 16, so a loop ends), and the
/// offset after it in the message.
fn read_name(message: &[u8], offset: usize) -> Result<(String, usize), WireError> {
    let mut labels: Vec<String> = Vec::new();
    let mut position = offset;
    let mut end = None;
    let mut jumps = 0;
    loop {
        let length = *message.get(position).ok_or(WireError::Malformed("name cut short"))?;
        match length {
            0 => {
                end.get_or_insert(position + 1);
                break;
            }
            length if length & 0xc0 == 0xc0 => {
                let low = *message.get(position + 1).ok_or(WireError::Malformed("pointer cut"))?;
                end.get_or_insert(position + 2);
                jumps += 1;
                if jumps > 16 {
                    return Err(WireError::Malformed("too many compression pointers"));
                }
                position = (usize::from(length & 0x3f) << 8) | usize::from(low);
            }
            length if length & 0xc0 != 0 => return Err(WireError::Malformed("unknown label type")),
            length => {
                let start = position + 1;
                let bytes = message
                    .get(start..start + usize::from(length))
                    .ok_or(WireError::Malformed("label cut short"))?;
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| WireError::Malformed("label not text"))?;
                labels.push(text.to_owned());
                position = start + usize::from(length);
            }
        }
    }
    let end = end.expect("the loop ends only after setting the end");
    Ok((labels.join("."), end))
}
