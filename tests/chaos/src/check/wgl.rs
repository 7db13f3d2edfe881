//! Wing & Gong's linearizability search with Lowe's memoization, for a register.
//!
//! stateright's `LinearizabilityTester` searches without memoization: a key with a few
//! writes of unknown outcome (each concurrent with everything after it) took minutes. Here a
//! configuration (which operations are linearized, the register's value) is explored once.
//!
//! Operations that returned are a call and a return event in time order; an operation of
//! unknown outcome (`info`) has a call and no return: it may be linearized at any point after
//! its call, or never. The history is linearizable when every returned operation can be
//! linearized.

use std::collections::HashSet;

/// One operation on the register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegisterOp {
    Write(u64),
    /// What the read returned.
    Read(u64),
}

/// An operation with its call and, if it returned, its return time.
#[derive(Clone, Copy, Debug)]
pub struct Timed {
    pub op: RegisterOp,
    pub call: u64,
    pub ret: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
struct Event {
    op: usize,
    is_call: bool,
}

/// Configurations a search may visit before it gives up (the verdict is then unknown).
pub const BUDGET: usize = 2_000_000;

/// Whether `ops`, starting from a register holding `initial`, is linearizable; `None` when
/// the search visited more than [`BUDGET`] configurations.
///
/// Written values must be unique (the workload makes them so): then a write of unknown
/// outcome that no read observed is dropped before searching. If it took effect, it was
/// overwritten before any read, and leaving it out changes no read's answer; and leaving out
/// an unknown write is always allowed. Each such write would otherwise double the search.
pub fn linearizable(initial: u64, ops: &[Timed]) -> Option<bool> {
    let observed: HashSet<u64> = ops
        .iter()
        .filter_map(|op| match op.op {
            RegisterOp::Read(value) => Some(value),
            RegisterOp::Write(_) => None,
        })
        .collect();
    let kept: Vec<Timed> = ops
        .iter()
        .filter(|op| match (op.op, op.ret) {
            (RegisterOp::Write(value), None) => observed.contains(&value),
            _ => true,
        })
        .copied()
        .collect();
    search(initial, &kept)
}

fn search(initial: u64, ops: &[Timed]) -> Option<bool> {
    // Calls before returns at the same instant: the permissive choice.
    let mut events: Vec<(u64, u8, Event)> = Vec::with_capacity(ops.len() * 2);
    for (index, op) in ops.iter().enumerate() {
        events.push((op.call, 0, Event { op: index, is_call: true }));
        if let Some(ret) = op.ret {
            events.push((ret.max(op.call), 1, Event { op: index, is_call: false }));
        }
    }
    events.sort_by_key(|(time, order, event)| (*time, *order, event.op));
    let events: Vec<Event> = events.into_iter().map(|(_, _, event)| event).collect();
    let count = events.len();
    if count == 0 {
        return Some(true);
    }
    // A doubly linked list over `events` (dancing links), with a head sentinel at `count`.
    const NONE: usize = usize::MAX;
    let head = count;
    let mut next = vec![NONE; count + 1];
    let mut prev = vec![NONE; count + 1];
    next[head] = 0;
    for at in 0..count {
        next[at] = if at + 1 < count { at + 1 } else { NONE };
        prev[at] = if at == 0 { head } else { at - 1 };
    }
    let mut return_of = vec![NONE; ops.len()];
    for (at, event) in events.iter().enumerate() {
        if !event.is_call {
            return_of[event.op] = at;
        }
    }
    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, at: usize| {
        let (before, after) = (prev[at], next[at]);
        next[before] = after;
        if after != NONE {
            prev[after] = before;
        }
    };
    let words = ops.len().div_ceil(64);
    let mut linearized = vec![0u64; words];
    let mut remaining_returns = ops.iter().filter(|op| op.ret.is_some()).count();
    let mut seen: HashSet<(Vec<u64>, u64)> = HashSet::new();
    let mut state = initial;
    // (call event lifted, state before it)
    let mut stack: Vec<(usize, u64)> = Vec::new();
    let mut at = next[head];
    while remaining_returns > 0 {
        if at == usize::MAX {
            // Only calls of unknown operations were left to try here.
            let Some((call, before)) = stack.pop() else { return Some(false) };
            undo(
                call,
                &events,
                &return_of,
                &mut linearized,
                &mut remaining_returns,
                ops,
                &mut next,
                &mut prev,
            );
            state = before;
            at = next[call];
            continue;
        }
        let event = events[at];
        if event.is_call {
            let op = ops[event.op].op;
            let after = match op {
                RegisterOp::Write(value) => Some(value),
                RegisterOp::Read(value) => (value == state).then_some(state),
            };
            if let Some(after) = after {
                linearized[event.op / 64] |= 1 << (event.op % 64);
                if seen.len() > BUDGET {
                    return None;
                }
                if seen.insert((linearized.clone(), after)) {
                    stack.push((at, state));
                    state = after;
                    unlink(&mut next, &mut prev, at);
                    if ops[event.op].ret.is_some() {
                        unlink(&mut next, &mut prev, return_of[event.op]);
                        remaining_returns -= 1;
                    }
                    at = next[head];
                    continue;
                }
                linearized[event.op / 64] &= !(1 << (event.op % 64));
            }
            at = next[at];
        } else {
            // A return with its operation not linearized: this branch is dead.
            let Some((call, before)) = stack.pop() else { return Some(false) };
            undo(
                call,
                &events,
                &return_of,
                &mut linearized,
                &mut remaining_returns,
                ops,
                &mut next,
                &mut prev,
            );
            state = before;
            at = next[call];
        }
    }
    Some(true)
}

fn relink(next: &mut [usize], prev: &mut [usize], at: usize) {
    let (before, after) = (prev[at], next[at]);
    next[before] = at;
    if after != usize::MAX {
        prev[after] = at;
    }
}

#[allow(clippy::too_many_arguments)]
fn undo(
    call: usize,
    events: &[Event],
    return_of: &[usize],
    linearized: &mut [u64],
    remaining_returns: &mut usize,
    ops: &[Timed],
    next: &mut [usize],
    prev: &mut [usize],
) {
    let op = events[call].op;
    linearized[op / 64] &= !(1 << (op % 64));
    if ops[op].ret.is_some() {
        relink(next, prev, return_of[op]);
        *remaining_returns += 1;
    }
    relink(next, prev, call);
}

#[cfg(test)]
mod tests {
    use stateright::semantics::register::{Register, RegisterOp as SrOp, RegisterRet};
    use stateright::semantics::{ConsistencyTester, LinearizabilityTester};

    use super::{linearizable, RegisterOp, Timed};
    use crate::rng::Rng;

    fn write(value: u64, call: u64, ret: Option<u64>) -> Timed {
        Timed { op: RegisterOp::Write(value), call, ret }
    }

    fn read(value: u64, call: u64, ret: u64) -> Timed {
        Timed { op: RegisterOp::Read(value), call, ret: Some(ret) }
    }

    #[test]
    fn hand_built_histories() {
        let verdict = |ops: &[Timed]| linearizable(0, ops).expect("within the budget");
        assert!(verdict(&[]));
        assert!(verdict(&[write(1, 0, Some(10)), read(1, 20, 30)]));
        assert!(!verdict(&[write(1, 0, Some(10)), read(0, 20, 30)]), "lost write");
        let stale = [write(1, 0, Some(10)), write(2, 20, Some(30)), read(1, 40, 50)];
        assert!(!verdict(&stale), "stale read");
        let late = [write(1, 0, None), read(0, 20, 30), read(1, 40, 50)];
        assert!(verdict(&late), "late unknown write");
        let unseen = [write(1, 0, None), read(1, 20, 30), read(0, 40, 50)];
        assert!(!verdict(&unseen), "unseen write");
        assert!(verdict(&[write(1, 0, Some(100)), read(1, 10, 20), read(0, 5, 15)]));
    }

    #[test]
    fn many_unknown_writes_nobody_saw_cost_nothing() {
        // Forty writes that timed out, each concurrent with everything after it: without
        // dropping the unobserved ones the search would try their 2^40 subsets.
        let mut history: Vec<Timed> = (0..40).map(|n| write(100 + n, n * 10, None)).collect();
        history.push(write(7, 500, Some(510)));
        history.push(read(7, 520, 530));
        // An unknown write may take effect late, after the acknowledged one…
        history.push(read(120, 540, 550));
        assert_eq!(linearizable(0, &history), Some(true));
        // …but never before it was sent.
        history.push(read(130, 5, 8));
        assert_eq!(linearizable(0, &history), Some(false), "a read saw a write not yet sent");
    }

    /// The same verdict as stateright's tester (a plain exhaustive search) on many random
    /// small histories, linearizable ones and broken ones alike.
    #[test]
    fn agrees_with_stateright_on_random_histories() {
        let mut rng = Rng::new(42);
        let (mut passed, mut failed) = (0, 0);
        for _ in 0..400 {
            let history = random_history(&mut rng);
            let ours = linearizable(0, &history).expect("small histories stay within the budget");
            assert_eq!(ours, stateright_verdict(&history), "{history:?}");
            if ours {
                passed += 1
            } else {
                failed += 1
            }
        }
        assert!(passed > 50 && failed > 50, "{passed} linearizable, {failed} not");
    }

    /// Three processes on a real register, each operation taking effect at a random moment
    /// inside its interval; some writes never return; some reads lie.
    fn random_history(rng: &mut Rng) -> Vec<Timed> {
        let mut value = 0;
        let mut history = Vec::new();
        let mut clock = [0u64; 3];
        let mut next_value = 1;
        for _ in 0..rng.between(2, 9) {
            let process = rng.below(3) as usize;
            let call = clock[process] + rng.between(0, 20);
            let ret = call + rng.between(1, 30);
            // Overlaps come from processes' clocks drifting apart; effects apply in call order.
            if rng.chance(50) {
                value = next_value;
                next_value += 1;
                let returned = if rng.chance(15) { None } else { Some(ret) };
                history.push(write(value, call, returned));
            } else {
                let seen = if rng.chance(20) { rng.below(next_value) } else { value };
                history.push(read(seen, call, ret));
            }
            clock[process] = ret + 1;
        }
        history
    }

    fn stateright_verdict(history: &[Timed]) -> bool {
        let mut steps: Vec<(u64, u8, usize)> = Vec::new();
        for (index, op) in history.iter().enumerate() {
            steps.push((op.call, 0, index));
            if let Some(ret) = op.ret {
                steps.push((ret, 1, index));
            }
        }
        steps.sort();
        let mut tester = LinearizabilityTester::new(Register(0u64));
        for (_, kind, index) in steps {
            let op = history[index];
            // One thread per operation: real-time order still comes from the call order.
            let thread = index;
            let result = if kind == 0 {
                let call = match op.op {
                    RegisterOp::Write(value) => SrOp::Write(value),
                    RegisterOp::Read(_) => SrOp::Read,
                };
                tester.on_invoke(thread, call).map(drop)
            } else {
                let answer = match op.op {
                    RegisterOp::Write(_) => RegisterRet::WriteOk,
                    RegisterOp::Read(value) => RegisterRet::ReadOk(value),
                };
                tester.on_return(thread, answer).map(drop)
            };
            result.expect("a well-formed history");
        }
        tester.is_consistent()
    }
}
