//! Tests of corral-dns: records from states built by applying real commands, and answers
//! to DNS messages as bytes; no process, no socket.

mod dns {
    mod records;
    mod wire;
}
