//! One state format for values that are mostly small fields plus one large binary part:
//! a format byte, the length of a JSON head (u32, big endian), the JSON head, then the
//! binary tail. The small fields stay readable and easy to extend (serde defaults); the
//! bulk (positions, a month's sums) stays compact. A value whose first byte is `{` is the
//! plain JSON earlier builds wrote.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How a stored value reads.
#[derive(Debug)]
pub enum Framed<'a, H> {
    /// Plain JSON of an earlier build: the caller decodes the whole value from it.
    Legacy(&'a [u8]),
    /// The framed form: the head and the binary tail.
    Current(H, &'a [u8]),
}

/// `format`, the head as JSON, then `tail`.
pub fn encode<H: Serialize>(format: u8, head: &H, tail: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(head).unwrap_or_default();
    let mut out = Vec::with_capacity(5 + json.len() + tail.len());
    out.push(format);
    out.extend_from_slice(&u32::try_from(json.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(tail);
    out
}

/// Reads what [`encode`] wrote with `format` (or legacy JSON); `what` names the value
/// in errors.
pub fn decode<'a, H: DeserializeOwned>(
    format: u8,
    what: &str,
    bytes: &'a [u8],
) -> Result<Framed<'a, H>, String> {
    match bytes.first() {
        Some(b'{') => Ok(Framed::Legacy(bytes)),
        Some(first) if *first == format && bytes.len() >= 5 => {
            let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
            let head = bytes
                .get(5..5 + len)
                .ok_or_else(|| format!("{what} ends early"))?;
            let head = serde_json::from_slice(head).map_err(|e| format!("{what}: {e}"))?;
            Ok(Framed::Current(head, &bytes[5 + len..]))
        }
        _ => Err(format!("{what} in an unknown format")),
    }
}
