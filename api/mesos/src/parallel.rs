//! The elements of a long JSON array written on two threads: a helper renders every other
//! block of elements into a buffer while the caller writes the blocks between straight into
//! the output, then copies the helper's in. The bytes are those of one thread writing them
//! in order; the memory held is two blocks, never the answer. GET_STATE and GET_TASKS list
//! every task this way (100,000 tasks are most of their 75 MB).

use std::io::{self, Write};

use serde::Serialize;

/// Elements per block: large enough that handing a block over costs nothing beside
/// rendering it, small enough that the two threads stay busy to the end.
pub(crate) const BLOCK: usize = 1024;

/// Writes `items` as JSON array elements (with commas between them, without the brackets).
pub(crate) fn write_elements<R: Serialize + Sync>(
    items: &[R],
    block: usize,
    out: &mut impl Write,
) -> serde_json::Result<()> {
    let blocks: Vec<&[R]> = items.chunks(block.max(1)).collect();
    if blocks.len() < 2 {
        return write_block(items, Leading::Nothing, out);
    }
    let helper_blocks: Vec<&[R]> = blocks.iter().skip(1).step_by(2).copied().collect();
    std::thread::scope(|scope| {
        // One block waiting at most: the helper stays a block ahead, not the whole answer.
        let (sender, receiver) = std::sync::mpsc::sync_channel::<serde_json::Result<Vec<u8>>>(1);
        scope.spawn(move || {
            let mut capacity = 0;
            for block in helper_blocks {
                let mut buffer = Vec::with_capacity(capacity);
                let rendered = write_block(block, Leading::Comma, &mut buffer).map(|()| buffer);
                let failed = rendered.is_err();
                capacity = rendered.as_ref().map_or(0, Vec::len);
                // The caller stopped (its client left, or it failed): nothing more is wanted.
                if sender.send(rendered).is_err() || failed {
                    return;
                }
            }
        });
        for (index, block) in blocks.iter().enumerate() {
            if index % 2 == 0 {
                let leading = if index == 0 { Leading::Nothing } else { Leading::Comma };
                write_block(block, leading, out)?;
                continue;
            }
            // The receiver is dropped on any early return, which ends the helper's loop.
            let rendered = receiver.recv().map_err(|_| {
                serde_json::Error::io(io::Error::other("the thread rendering half the answer stopped"))
            })??;
            out.write_all(&rendered).map_err(serde_json::Error::io)?;
        }
        Ok(())
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
        write_elements(items, block, &mut out).expect("strings render");
        out.push(b']');
        String::from_utf8(out).expect("JSON is UTF-8")
    }

    #[test]
    fn the_bytes_are_those_of_one_thread_writing_the_array() {
        for count in [0, 1, 2, 3, 4, 5, 6, 7, 10, 101] {
            let items = items(count);
            let expected = serde_json::to_string(&items).expect("strings render");
            for block in [1, 2, 3, 4, 1024] {
                assert_eq!(in_parallel(&items, block), expected, "{count} items, blocks of {block}");
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
            let error = write_elements(&items, 2, &mut Vec::new()).expect_err("an element fails");
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
        let error = write_elements(&items, 8, &mut Gone { room: 1_000 }).expect_err("it left");
        assert!(error.is_io(), "{error}");
    }
}
