//! RecordIO, the framing of Mesos v1 streams: each record is its length in decimal, a
//! newline, then that many bytes.

use bytes::{Bytes, BytesMut};

pub fn encode_record(payload: &[u8]) -> Bytes {
    let header = format!("{}\n", payload.len());
    let mut record = BytesMut::with_capacity(header.len() + payload.len());
    record.extend_from_slice(header.as_bytes());
    record.extend_from_slice(payload);
    record.freeze()
}

/// Splits complete records off the front of `buffer`, leaving a partial one in place.
pub fn decode_records(buffer: &mut Vec<u8>) -> Result<Vec<Vec<u8>>, String> {
    let mut records = Vec::new();
    while let Some(newline) = buffer.iter().position(|&byte| byte == b'\n') {
        let length_text = std::str::from_utf8(&buffer[..newline])
            .map_err(|_| "record length is not text".to_owned())?;
        let length: usize = length_text
            .trim()
            .parse()
            .map_err(|_| format!("record length '{length_text}' is not a number"))?;
        if buffer.len() < newline + 1 + length {
            break;
        }
        let record = buffer[newline + 1..newline + 1 + length].to_vec();
        buffer.drain(..newline + 1 + length);
        records.push(record);
    }
    Ok(records)
}
