//! The elements of a long JSON array written on two threads: a helper renders every other
//! block of elements into a buffer while the caller writes the blocks between straight into
//! the output, then copies the helper's in. The bytes are those of one thread writing them
//! in order; the memory held is a few blocks, never the answer. GET_STATE and GET_TASKS list
//! every task this way (100,000 tasks are most of their 75 MB).

use std::io::{self, Write};

use serde::Serialize;

/// Elements per block: large enough that handing a block over costs nothing beside
/// rendering it, small enough that the two threads stay busy to the end.
pub(crate) const BLOCK: usize = 1024;

/// Writes `items` as JSON array elements (with commas between them, without the brackets).
/// Blocks are taken from `items` as they are needed, so the first bytes go out at once.
pub(crate) fn write_elements<R: Serialize + Send>(
    items: impl Iterator<Item = R>,
    block: usize,
    out: &mut impl Write,
) -> serde_json::Result<()> {
    let mut items = items;
    let mut blocks = std::iter::from_fn(|| {
        let taken: Vec<R> = items.by_ref().take(block.max(1)).collect();
        (!taken.is_empty()).then_some(taken)
    });
    let Some(first) = blocks.next() else { return Ok(()) };
    let Some(second) = blocks.next() else { return write_block(&first, Leading::Nothing, out) };
    std::thread::scope(|scope| {
        // One block each way at most: the helper is a block ahead, never the whole answer.
        let (to_helper, helper_blocks) = std::sync::mpsc::sync_channel::<Vec<R>>(1);
        let (helper_out, rendered) =
            std::sync::mpsc::sync_channel::<serde_json::Result<Vec<u8>>>(1);
        scope.spawn(move || {
            let mut capacity = 0;
            for block in helper_blocks {
                let mut buffer = Vec::with_capacity(capacity);
                let result = write_block(&block, Leading::Comma, &mut buffer).map(|()| buffer);
                let failed = result.is_err();
                capacity = result.as_ref().map_or(0, Vec::len);
                // The caller stopped (its client left, or it failed): nothing more is wanted.
                if helper_out.send(result).is_err() || failed {
                    return;
                }
            }
        });
        let stopped = || {
            serde_json::Error::io(io::Error::other("the thread rendering half the answer stopped"))
        };
        // Blocks alternate: the helper renders the odd ones while this thread writes the even.
        to_helper.send(second).map_err(|_| stopped())?;
        write_block(&first, Leading::Nothing, out)?;
        loop {
            // Any early return drops both channels, which ends the helper's loop.
            let theirs = rendered.recv().map_err(|_| stopped())??;
            out.write_all(&theirs).map_err(serde_json::Error::io)?;
            let Some(ours) = blocks.next() else { return Ok(()) };
            let next_theirs = blocks.next();
            let last = next_theirs.is_none();
            if let Some(next) = next_theirs {
                to_helper.send(next).map_err(|_| stopped())?;
            }
            write_block(&ours, Leading::Comma, out)?;
            if last {
                return Ok(());
            }
        }
    })
}

/// Whether a block's first element follows elements already written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Leading {
    Nothing,
    Comma,
}

fn write_block<R: Serialize>(
    block: &[R],
    leading: Leading,
    out: &mut impl Write,
) -> serde_json::Result<()> {
    for (index, item) in block.iter().enumerate() {
        if index > 0 || leading == Leading::Comma {
            out.write_all(b",").map_err(serde_json::Error::io)?;
        }
        serde_json::to_writer(&mut *out, item)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every element needs escaping and differs from its neighbours, so a block out of place
    /// or a comma too many or too few shows.
    fn items(count: usize) -> Vec<String> {
        (0..count).map(|n| format!("\"item\" {n}\n")).collect()
    }

    fn in_parallel(items: &[String], block: usize) -> String {
        let mut out = b"[".to_vec();
        write_elements(items.iter(), block, &mut out).expect("strings render");
        out.push(b']');
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    #[test]
    fn the_bytes_are_those_of_one_thread_writing_the_array() {
        for count in [0, 1, 2, 3, 4, 5, 6, 7, 10, 101] {
            let items = items(count);
            let expected = serde_json::to_string(&items).expect("strings render");
            for block in [1, 2, 3, 4, 1024] {
                assert_eq!(
                    in_parallel(&items, block),
                    expected,
                    "{count} items, blocks of {block}"
                );
            }
        }
    }

    /// Fails to serialize when its number comes up.
    struct FailsAt(usize, usize);

    impl Serialize for FailsAt {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            if self.0 == self.1 {
                return Err(serde::ser::Error::custom(format!("element {} cannot render", self.0)));
            }
            serializer.serialize_u64(self.0 as u64)
        }
    }

    #[test]
    fn an_element_that_fails_on_either_thread_fails_the_whole_write() {
        // Blocks of 2: elements 2 and 3 are the helper's block, 4 and 5 the caller's.
        for failing in [0, 3, 4, 9] {
            let items: Vec<FailsAt> = (0..10).map(|n| FailsAt(n, failing)).collect();
            let error =
                write_elements(items.iter(), 2, &mut Vec::new()).expect_err("an element fails");
            assert!(error.to_string().contains(&format!("element {failing}")), "{error}");
        }
    }

    /// Takes `room` bytes, then fails as a body whose client left does.
    struct Gone {
        room: usize,
    }

    impl Write for Gone {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            if data.len() > self.room {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"));
            }
            self.room -= data.len();
            Ok(data.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_client_that_leaves_stops_both_threads() {
        let items = items(10_000);
        // Returns (the helper is joined) rather than waiting on a block nobody takes.
        let error =
            write_elements(items.iter(), 8, &mut Gone { room: 1_000 }).expect_err("it left");
        assert!(error.is_io(), "{error}");
    }
}
