//! Random damage to valid documents, for the fuzz and fast-reader tests.

use proptest::prelude::*;

/// A random edit of a valid document.
#[derive(Debug, Clone)]
pub enum Mutation {
    Flip(usize, u8),
    Delete(usize, usize),
    Insert(usize, Vec<u8>),
    Duplicate(usize, usize),
}

/// `bytes` with `mutations` applied in order (positions taken modulo the current length).
pub fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        let len = bytes.len();
        match m {
            Mutation::Flip(at, x) => bytes[at % len] ^= x,
            Mutation::Delete(at, n) => {
                let at = at % len;
                bytes.drain(at..(at + n).min(len));
            }
            Mutation::Insert(at, ins) => {
                let at = at % len;
                bytes.splice(at..at, ins.iter().copied());
            }
            Mutation::Duplicate(at, n) => {
                let at = at % len;
                let chunk: Vec<u8> = bytes[at..(at + n).min(len)].to_vec();
                bytes.splice(at..at, chunk);
            }
        }
    }
    bytes
}

/// One damage of the kinds a broken sender or transport makes, with JSON tokens to insert.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    let tokens = proptest::sample::select(vec![
        b"\"".to_vec(),
        b"{".to_vec(),
        b"}".to_vec(),
        b"[".to_vec(),
        b"]".to_vec(),
        b",".to_vec(),
        b"-1".to_vec(),
        b"1e999".to_vec(),
        b"null".to_vec(),
        b"\"A09\"".to_vec(),
        b"99999999999999999999999999999999".to_vec(),
        b"\xEF\xBB\xBF".to_vec(),
        b"\\u0000".to_vec(),
        b"\xff".to_vec(),
        b"\"value\": 0".to_vec(),
    ]);
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(a, x)| Mutation::Flip(a, x)),
        (any::<usize>(), 1usize..64).prop_map(|(a, n)| Mutation::Delete(a, n)),
        (any::<usize>(), tokens).prop_map(|(a, t)| Mutation::Insert(a, t)),
        (any::<usize>(), 1usize..256).prop_map(|(a, n)| Mutation::Duplicate(a, n)),
    ]
}
