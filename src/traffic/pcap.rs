//! pcap captures (libpcap 2.4, Ethernet): the writer for generated
//! traffic and a reader for replaying it.

use std::io::{self, Read, Write};

/// A pcap (libpcap 2.4, Ethernet) writer.
pub struct PcapWriter<W: Write> {
    out: W,
    count: u64,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&65535u32.to_le_bytes())?;
        out.write_all(&1u32.to_le_bytes())?; // LINKTYPE_ETHERNET
        Ok(PcapWriter { out, count: 0 })
    }

    pub fn write(&mut self, frame: &[u8]) -> io::Result<()> {
        // Microsecond timestamps, one per packet: only the order matters.
        let us = self.count;
        self.out
            .write_all(&((us / 1_000_000) as u32).to_le_bytes())?;
        self.out
            .write_all(&((us % 1_000_000) as u32).to_le_bytes())?;
        self.out.write_all(&(frame.len() as u32).to_le_bytes())?;
        self.out.write_all(&(frame.len() as u32).to_le_bytes())?;
        self.out.write_all(frame)?;
        self.count += 1;
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<u64> {
        self.out.flush()?;
        Ok(self.count)
    }
}

/// A pcap reader (libpcap 2.4, either byte order, micro- or nanosecond
/// timestamps), Ethernet link type only: what [`PcapWriter`] writes and what
/// tcpdump, scapy and DPDK's `net_pcap` write.
pub struct PcapReader<R: Read> {
    input: R,
    swapped: bool,
    snaplen: u32,
    frame: Vec<u8>,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl<R: Read> PcapReader<R> {
    /// Reads and checks the file header.
    pub fn new(mut input: R) -> io::Result<Self> {
        let mut h = [0u8; 24];
        input
            .read_exact(&mut h)
            .map_err(|_| invalid("not a pcap file (shorter than its header)"))?;
        let magic = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let swapped = match magic {
            0xa1b2_c3d4 | 0xa1b2_3c4d => false,
            0xd4c3_b2a1 | 0x4d3c_b2a1 => true,
            0x0a0d_0d0a => return Err(invalid("pcapng is not supported; save as pcap")),
            _ => return Err(invalid("not a pcap file (bad magic)")),
        };
        let u32_at = |i: usize| {
            let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
            if swapped {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let link = u32_at(20) & 0x0fff_ffff;
        if link != 1 {
            return Err(invalid(format!(
                "pcap link type {link}, only Ethernet (1) is supported"
            )));
        }
        Ok(PcapReader {
            input,
            swapped,
            snaplen: u32_at(16),
            frame: Vec::new(),
        })
    }

    /// The next frame's bytes, `None` at the end of the file. A frame cut
    /// short by the capture's snap length is an error: replaying it would
    /// send a different packet.
    pub fn next_frame(&mut self) -> io::Result<Option<&[u8]>> {
        let mut h = [0u8; 16];
        let mut got = 0;
        while got < h.len() {
            match self.input.read(&mut h[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(invalid("pcap record header cut short")),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let u32_at = |i: usize| {
            let b = [h[i], h[i + 1], h[i + 2], h[i + 3]];
            if self.swapped {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let (incl, orig) = (u32_at(8), u32_at(12));
        // 256 KiB bounds a corrupt length before it allocates.
        if incl > self.snaplen.max(65535) || incl > 262_144 {
            return Err(invalid(format!("pcap record of {incl} bytes")));
        }
        if incl < orig {
            return Err(invalid(format!(
                "pcap record truncated by the snap length ({incl} of {orig} bytes)"
            )));
        }
        self.frame.resize(incl as usize, 0);
        self.input
            .read_exact(&mut self.frame)
            .map_err(|_| invalid("pcap record cut short"))?;
        Ok(Some(&self.frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcap_layout() {
        let mut buf = Vec::new();
        let mut w = PcapWriter::new(&mut buf).unwrap();
        w.write(&[1, 2, 3]).unwrap();
        assert_eq!(w.finish().unwrap(), 1);
        assert_eq!(buf.len(), 24 + 16 + 3);
        assert_eq!(&buf[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
    }

    #[test]
    fn pcap_round_trip() {
        let mut buf = Vec::new();
        let mut w = PcapWriter::new(&mut buf).unwrap();
        let frames: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 60 + i as usize]).collect();
        for f in &frames {
            w.write(f).unwrap();
        }
        w.finish().unwrap();
        let mut r = PcapReader::new(&buf[..]).unwrap();
        let mut back = Vec::new();
        while let Some(f) = r.next_frame().unwrap() {
            back.push(f.to_vec());
        }
        assert_eq!(back, frames);
    }

    #[test]
    fn pcap_big_endian_and_errors() {
        // A big-endian, nanosecond file with one 3-byte frame.
        let mut be = Vec::new();
        be.extend(0xa1b2_3c4du32.to_be_bytes());
        be.extend(2u16.to_be_bytes());
        be.extend(4u16.to_be_bytes());
        be.extend([0u8; 8]);
        be.extend(65535u32.to_be_bytes());
        be.extend(1u32.to_be_bytes());
        for v in [0u32, 0, 3, 3] {
            be.extend(v.to_be_bytes());
        }
        be.extend([7, 8, 9]);
        let mut r = PcapReader::new(&be[..]).unwrap();
        assert_eq!(r.next_frame().unwrap(), Some(&[7u8, 8, 9][..]));
        assert_eq!(r.next_frame().unwrap(), None);

        let err = |b: &[u8]| match PcapReader::new(b) {
            Err(e) => e.to_string(),
            Ok(mut r) => loop {
                match r.next_frame() {
                    Err(e) => break e.to_string(),
                    Ok(None) => break "no error".into(),
                    Ok(Some(_)) => {}
                }
            },
        };
        assert!(err(b"short").contains("not a pcap"));
        assert!(err(&[0u8; 24]).contains("bad magic"));
        let mut raw_ip = be.clone();
        raw_ip[20..24].copy_from_slice(&101u32.to_be_bytes());
        assert!(err(&raw_ip).contains("link type 101"));
        let mut cut = be.clone();
        cut.pop();
        assert!(err(&cut).contains("cut short"));
        let mut snapped = be.clone();
        snapped[24 + 12..24 + 16].copy_from_slice(&60u32.to_be_bytes());
        assert!(err(&snapped).contains("truncated"));
        let mut huge = be;
        huge[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(err(&huge).contains("record of"));
    }
}
