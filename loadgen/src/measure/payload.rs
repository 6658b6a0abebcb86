//! Message bytes: every message of every connection has its own content, derived from the
//! connection id and the message's sequence number, so a corrupted, lost, duplicated or
//! misplaced byte (even one from another message) is detected when the echo is checked.
//!
//! Nothing is stored per message: the sender fills bytes on the fly and the receiver checks
//! them against the same function. Word `j` (8 bytes, little-endian) of a message is a
//! SplitMix64-style mix of the message key and `j`.

/// The key of message `seq` on connection `conn`.
#[inline]
pub fn key(conn: u32, seq: u64) -> u64 {
    mix((u64::from(conn) << 40) ^ seq ^ 0x005E_ED0F_EC40)
}

#[inline]
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[inline]
fn word(key: u64, j: usize) -> [u8; 8] {
    mix(key ^ (j as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93)).to_le_bytes()
}

/// Calls `f(index_in_range, expected_bytes)` for the pieces of bytes
/// `offset..offset + len` of message `key`: a partial word, whole aligned words, a partial
/// word. Stops early when `f` returns false.
#[inline]
fn walk(key: u64, offset: usize, len: usize, mut f: impl FnMut(usize, &[u8]) -> bool) -> bool {
    let end = offset + len;
    let mut pos = offset;
    // Head: up to the first word boundary.
    if !pos.is_multiple_of(8) && pos < end {
        let w = word(key, pos / 8);
        let take = (8 - pos % 8).min(end - pos);
        if !f(0, &w[pos % 8..pos % 8 + take]) {
            return false;
        }
        pos += take;
    }
    // Body: whole words.
    while pos + 8 <= end {
        if !f(pos - offset, &word(key, pos / 8)) {
            return false;
        }
        pos += 8;
    }
    // Tail: the start of one more word.
    if pos < end {
        let w = word(key, pos / 8);
        return f(pos - offset, &w[..end - pos]);
    }
    true
}

/// Writes bytes `offset..offset + out.len()` of message `key` into `out`.
#[inline]
pub fn fill(key: u64, offset: usize, out: &mut [u8]) {
    walk(key, offset, out.len(), |i, expected| {
        out[i..i + expected.len()].copy_from_slice(expected);
        true
    });
}

/// Whether `got` equals bytes `offset..offset + got.len()` of message `key`.
#[inline]
pub fn verify(key: u64, offset: usize, got: &[u8]) -> bool {
    walk(key, offset, got.len(), |i, expected| {
        got[i..i + expected.len()] == *expected
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(key: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        fill(key, 0, &mut v);
        v
    }

    #[test]
    fn pieces_verify_at_any_split() {
        let k = key(3, 17);
        let msg = message(k, 100);
        for split in 0..100 {
            assert!(verify(k, 0, &msg[..split]) && verify(k, split, &msg[split..]));
            let mut part = vec![0; 100 - split];
            fill(k, split, &mut part);
            assert_eq!(part, msg[split..]);
        }
    }

    #[test]
    fn every_single_byte_corruption_is_detected() {
        let k = key(1, 2);
        let msg = message(k, 64);
        for i in 0..64 {
            for flip in [1u8, 0x80, 0xFF] {
                let mut bad = msg.clone();
                bad[i] ^= flip;
                assert!(!verify(k, 0, &bad), "byte {i} flip {flip:#x} undetected");
            }
        }
    }

    #[test]
    fn messages_differ_across_sequence_and_connection() {
        // A byte from a neighbouring message or another connection does not pass.
        for len in [1usize, 8, 64] {
            let a = message(key(5, 100), len);
            assert!(!verify(key(5, 101), 0, &a) || len == 1 && a == message(key(5, 101), 1));
            assert_ne!(message(key(5, 100), 64), message(key(6, 100), 64));
            assert_ne!(message(key(5, 100), 64), message(key(5, 99), 64));
        }
        // Single-byte messages: consecutive ones differ often enough to catch a shift.
        let firsts: std::collections::HashSet<u8> = (0..256).map(|s| message(key(0, s), 1)[0]).collect();
        assert!(firsts.len() > 100);
    }
}
