//! The UDP wire format: every datagram starts with a header (sequence number, send time,
//! connection id) and carries the message's payload pattern after it, so each reply is
//! matched to its datagram on its own, whatever order replies come in. A connect probe is a
//! header alone with the sequence number [`PROBE`].

/// Bytes of the header: sequence number (8), send time in ns since the run's start (8),
/// connection id (4), little-endian. `--msg-size` must hold it.
pub(crate) const HEADER: usize = 20;
/// The sequence number of a connect probe (header only).
pub(crate) const PROBE: u64 = u64::MAX;
/// Writes a header into `out[..HEADER]`.
#[inline]
pub(crate) fn write_header(out: &mut [u8], seq: u64, sent_ns: u64, id: u32) {
    out[..8].copy_from_slice(&seq.to_le_bytes());
    out[8..16].copy_from_slice(&sent_ns.to_le_bytes());
    out[16..20].copy_from_slice(&id.to_le_bytes());
}

/// Reads (sequence number, send time, connection id) from a datagram, if it holds a header.
#[inline]
pub(crate) fn read_header(d: &[u8]) -> Option<(u64, u64, u32)> {
    let d = d.get(..HEADER)?;
    let u64_at = |i: usize| u64::from_le_bytes(d[i..i + 8].try_into().expect("8 bytes"));
    Some((
        u64_at(0),
        u64_at(8),
        u32::from_le_bytes(d[16..20].try_into().expect("4 bytes")),
    ))
}

/// The connect probe of connection `id`: a header with the probe's sequence number.
pub(crate) fn probe(id: u32, now_ns: u64) -> [u8; HEADER] {
    let mut p = [0u8; HEADER];
    write_header(&mut p, PROBE, now_ns, id);
    p
}

/// Whether `d` is the echo of connection `id`'s probe.
pub(crate) fn is_probe_echo(d: &[u8], id: u32) -> bool {
    d.len() == HEADER && matches!(read_header(d), Some((PROBE, _, i)) if i == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let mut d = [0u8; 64];
        write_header(&mut d, 7, 123_456, 42);
        assert_eq!(read_header(&d), Some((7, 123_456, 42)));
        assert_eq!(read_header(&d[..HEADER - 1]), None);
        assert!(is_probe_echo(&probe(3, 9), 3));
        assert!(!is_probe_echo(&probe(3, 9), 4));
    }
}
