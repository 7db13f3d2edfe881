//! Tests of corral-dns: the service catalog and records from states built by applying real commands, and answers
//! to DNS messages as bytes; no process, no socket.

mod dns {
    mod catalog;
    mod records;
    mod wire;
}
