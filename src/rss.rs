//! Software Toeplitz hash and redirection table, mirroring a NIC's RSS so
//! that rvs can compute which queue (lcore) a flow lands on.

use std::net::IpAddr;

/// The RSS key most NICs ship with (Microsoft's verification key); rvs
/// configures it on its ports and mirrors it in software.
pub const DEFAULT_KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];

/// The key rvs programs on a port whose driver takes `len` bytes (0: the
/// driver does not say, so the usual 40): [`DEFAULT_KEY`], repeated to the
/// length. Every length hashes rvs's inputs alike (see [`Toeplitz::new`]),
/// so one software mirror serves ports with different key sizes.
pub fn key_of_len(len: usize) -> Vec<u8> {
    let len = if len == 0 { DEFAULT_KEY.len() } else { len };
    DEFAULT_KEY.iter().copied().cycle().take(len).collect()
}

/// Names of `RTE_ETH_RSS_*` hash-type bits as dpdk-testpmd spells them
/// (ABI-stable bit positions in DPDK's `rte_ethdev.h`).
const HASH_TYPES: [(u32, &str); 34] = [
    (2, "ipv4"),
    (3, "ipv4-frag"),
    (4, "ipv4-tcp"),
    (5, "ipv4-udp"),
    (6, "ipv4-sctp"),
    (7, "ipv4-other"),
    (8, "ipv6"),
    (9, "ipv6-frag"),
    (10, "ipv6-tcp"),
    (11, "ipv6-udp"),
    (12, "ipv6-sctp"),
    (13, "ipv6-other"),
    (14, "l2-payload"),
    (15, "ipv6-ex"),
    (16, "ipv6-tcp-ex"),
    (17, "ipv6-udp-ex"),
    (18, "port"),
    (19, "vxlan"),
    (20, "geneve"),
    (21, "nvgre"),
    (23, "gtpu"),
    (24, "eth"),
    (25, "s-vlan"),
    (26, "c-vlan"),
    (27, "esp"),
    (28, "ah"),
    (29, "l2tpv3"),
    (30, "pfcp"),
    (58, "l2-dst-only"),
    (59, "l2-src-only"),
    (60, "l4-dst-only"),
    (61, "l4-src-only"),
    (62, "l3-dst-only"),
    (63, "l3-src-only"),
];

/// `RTE_ETH_RSS_*` bits as names (unknown bits as `bitN`).
pub fn hash_type_names(bits: u64) -> Vec<String> {
    (0..64)
        .filter(|b| bits & (1u64 << b) != 0)
        .map(|b| match HASH_TYPES.iter().find(|(n, _)| *n == b) {
            Some((_, name)) => name.to_string(),
            None => format!("bit{b}"),
        })
        .collect()
}

/// Toeplitz hash with a fixed key, table-driven: for every input byte
/// position a 256-entry table holds the XOR of the key windows its set bits
/// select, so hashing costs one lookup per input byte.
#[derive(Clone)]
pub struct Toeplitz {
    key: Vec<u8>,
    tables: Vec<[u32; 256]>,
}

/// The longest input: IPv6 source + destination + two ports.
const MAX_INPUT: usize = 36;

impl Toeplitz {
    /// A hash with a key of any length (40 bytes on most NICs, 52 on
    /// Intel's i40e and ice). Inputs are at most 36 bytes, so only the first
    /// 36 + 4 key bytes ever matter; a shorter key reads as zero past its end.
    pub fn new(key: impl AsRef<[u8]>) -> Toeplitz {
        let key = key.as_ref().to_vec();
        let mut tables = vec![[0u32; 256]; MAX_INPUT];
        for (pos, table) in tables.iter_mut().enumerate() {
            // Window for each bit of this byte: key bits [pos*8+b, pos*8+b+32).
            let mut windows = [0u32; 8];
            for (b, w) in windows.iter_mut().enumerate() {
                *w = key_window(&key, pos * 8 + b);
            }
            for (v, slot) in table.iter_mut().enumerate() {
                let mut h = 0;
                for (b, w) in windows.iter().enumerate() {
                    if v & (0x80 >> b) != 0 {
                        h ^= w;
                    }
                }
                *slot = h;
            }
        }
        Toeplitz { key, tables }
    }

    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// Hash up to 36 bytes of input (longer input is cut there).
    #[inline]
    pub fn hash(&self, input: &[u8]) -> u32 {
        input
            .iter()
            .zip(&self.tables)
            .fold(0, |h, (&b, t)| h ^ t[b as usize])
    }

    /// Hash of (source, destination) addresses and, if given, ports, laid
    /// out as NICs do (addresses then ports, network byte order).
    pub fn hash_tuple(&self, src: IpAddr, dst: IpAddr, ports: Option<(u16, u16)>) -> u32 {
        let mut buf = [0u8; MAX_INPUT];
        let mut n = 0;
        for a in [src, dst] {
            match a {
                IpAddr::V4(v4) => {
                    buf[n..n + 4].copy_from_slice(&v4.octets());
                    n += 4;
                }
                IpAddr::V6(v6) => {
                    buf[n..n + 16].copy_from_slice(&v6.octets());
                    n += 16;
                }
            }
        }
        if let Some((sp, dp)) = ports {
            buf[n..n + 2].copy_from_slice(&sp.to_be_bytes());
            buf[n + 2..n + 4].copy_from_slice(&dp.to_be_bytes());
            n += 4;
        }
        self.hash(&buf[..n])
    }
}

/// Which worker owns a connection: the queue the NIC's RSS puts the client's
/// packets on. The client-facing port hashes source fields only (client
/// address, client port), the server-facing port destination fields only, so
/// a NAT reply (destination = the client) hashes the same bytes and lands on
/// the same queue. This mirrors it in software for packets that arrive
/// elsewhere (one-arm layouts, devices without RSS).
#[derive(Clone)]
pub struct OwnerMap {
    toeplitz: Toeplitz,
    reta: Reta,
}

impl OwnerMap {
    pub fn new(key: impl AsRef<[u8]>, reta: Reta) -> OwnerMap {
        OwnerMap {
            toeplitz: Toeplitz::new(key),
            reta,
        }
    }

    /// The hash of one endpoint (address, then port), as a NIC computes it
    /// with L3_SRC_ONLY|L4_SRC_ONLY (or the DST_ONLY pair).
    #[inline]
    pub fn endpoint_hash(&self, addr: IpAddr, port: u16) -> u32 {
        let mut buf = [0u8; 18];
        let n = match addr {
            IpAddr::V4(a) => {
                buf[..4].copy_from_slice(&a.octets());
                4
            }
            IpAddr::V6(a) => {
                buf[..16].copy_from_slice(&a.octets());
                16
            }
        };
        buf[n..n + 2].copy_from_slice(&port.to_be_bytes());
        self.toeplitz.hash(&buf[..n + 2])
    }

    /// The worker owning connections of client `addr`:`port`.
    #[inline]
    pub fn owner(&self, addr: IpAddr, port: u16) -> u16 {
        self.reta.queue(self.endpoint_hash(addr, port))
    }
}

/// The 32 key bits starting at bit `bit` (bits past the key's end are 0).
fn key_window(key: &[u8], bit: usize) -> u32 {
    let mut w = 0u32;
    for i in 0..32 {
        let k = bit + i;
        let set = k / 8 < key.len() && key[k / 8] & (0x80 >> (k % 8)) != 0;
        w = (w << 1) | set as u32;
    }
    w
}

/// A redirection table: hash -> queue, indexed by the hash's low bits, as
/// DPDK drivers do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reta {
    entries: Vec<u16>,
}

impl Reta {
    /// Entries spread round robin over `queues` (what drivers default to).
    pub fn round_robin(size: usize, queues: u16) -> Reta {
        let q = queues.max(1) as usize;
        Reta {
            entries: (0..size.max(1)).map(|i| (i % q) as u16).collect(),
        }
    }

    pub fn from_entries(entries: Vec<u16>) -> Option<Reta> {
        (!entries.is_empty()).then_some(Reta { entries })
    }

    pub fn entries(&self) -> &[u16] {
        &self.entries
    }

    #[inline]
    pub fn queue(&self, hash: u32) -> u16 {
        self.entries[hash as usize % self.entries.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const MS_KEY: [u8; 40] = DEFAULT_KEY;

    fn v4(s: &str) -> IpAddr {
        IpAddr::V4(s.parse::<Ipv4Addr>().unwrap())
    }

    /// Microsoft's published RSS verification suite (IPv4 rows).
    #[test]
    fn matches_microsoft_verification_vectors() {
        let t = Toeplitz::new(MS_KEY);
        let rows = [
            (
                "66.9.149.187",
                2794,
                "161.142.100.80",
                1766,
                0x323e8fc2,
                0x51ccc178,
            ),
            (
                "199.92.111.2",
                14230,
                "65.69.140.83",
                4739,
                0xd718262a,
                0xc626b0ea,
            ),
            (
                "24.19.198.95",
                12898,
                "12.22.207.184",
                38024,
                0xd2d0a5de,
                0x5c2b394a,
            ),
            (
                "38.27.205.30",
                48228,
                "209.142.163.6",
                2217,
                0x82989176,
                0xafc7327f,
            ),
            (
                "153.39.163.191",
                44251,
                "202.188.127.2",
                1303,
                0x5d1809c5,
                0x10e828a2,
            ),
        ];
        for (src, sp, dst, dp, ip_only, with_ports) in rows {
            assert_eq!(t.hash_tuple(v4(src), v4(dst), None), ip_only, "{src}");
            assert_eq!(
                t.hash_tuple(v4(src), v4(dst), Some((sp, dp))),
                with_ports,
                "{src}"
            );
        }
    }

    #[test]
    fn ipv6_vector() {
        let t = Toeplitz::new(MS_KEY);
        let src: IpAddr = "3ffe:2501:200:1fff::7".parse().unwrap();
        let dst: IpAddr = "3ffe:2501:200:3::1".parse().unwrap();
        assert_eq!(t.hash_tuple(src, dst, None), 0x2cc18cd5);
        assert_eq!(t.hash_tuple(src, dst, Some((2794, 1766))), 0x40207d3d);
    }

    #[test]
    fn owner_is_the_same_for_request_and_nat_reply() {
        let m = OwnerMap::new(MS_KEY, Reta::round_robin(128, 2));
        let t = Toeplitz::new(MS_KEY);
        // Source-only hashing of the request equals destination-only hashing
        // of the reply: both hash (client address, client port).
        let (c, cp): (IpAddr, u16) = (v4("66.9.149.187"), 2794);
        let mut bytes = [0u8; 6];
        bytes[..4].copy_from_slice(&[66, 9, 149, 187]);
        bytes[4..].copy_from_slice(&cp.to_be_bytes());
        assert_eq!(m.endpoint_hash(c, cp), t.hash(&bytes));
        let owners: std::collections::HashSet<u16> =
            (0..64u16).map(|p| m.owner(c, 1000 + p)).collect();
        assert_eq!(
            owners.len(),
            2,
            "ports of one client spread over both workers"
        );
    }

    #[test]
    fn longer_keys_hash_alike() {
        assert_eq!(key_of_len(0), DEFAULT_KEY);
        let k52 = key_of_len(52);
        assert_eq!(k52.len(), 52);
        assert_eq!(k52[..40], DEFAULT_KEY);
        let (a, b) = (Toeplitz::new(DEFAULT_KEY), Toeplitz::new(&k52));
        let src: IpAddr = "3ffe:2501:200:1fff::7".parse().unwrap();
        let dst: IpAddr = "3ffe:2501:200:3::1".parse().unwrap();
        let ports = Some((2794, 1766));
        assert_eq!(a.hash_tuple(src, dst, ports), b.hash_tuple(src, dst, ports));
    }

    #[test]
    fn hash_types_have_names() {
        assert_eq!(
            hash_type_names((1 << 4) | (1 << 63) | (1 << 61) | (1 << 40)),
            ["ipv4-tcp", "bit40", "l4-src-only", "l3-src-only"]
        );
        assert!(hash_type_names(0).is_empty());
    }

    #[test]
    fn reta_uses_low_bits() {
        let r = Reta::round_robin(128, 4);
        assert_eq!(r.queue(0), 0);
        assert_eq!(r.queue(5), 1);
        assert_eq!(r.queue(128 + 7), 3);
        assert!(Reta::from_entries(vec![]).is_none());
    }
}
