//! The host's hugepages as rvsd needs to know them before EAL starts: how
//! many are reserved and free per page size, and where hugetlbfs is
//! mounted. EAL's own failures here (`Permission denied`, `Cannot allocate
//! memory`) do not say which of these is wrong; [`Hugepages::check_start`]
//! and [`Hugepages::check_room`] do, with the command that fixes it.

use std::path::Path;

/// One hugepage size's counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSize {
    pub kb: u64,
    pub total: u64,
    pub free: u64,
}

/// What the host has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hugepages {
    pub sizes: Vec<PageSize>,
    /// Mount points of hugetlbfs.
    pub mounts: Vec<String>,
}

const MIB: u64 = 1 << 20;

/// What EAL needs beside the packet pool: descriptor rings, hand-off rings,
/// its own tables (about 4 MiB measured with two ports and two workers;
/// NIC drivers take a little more).
pub const EAL_OVERHEAD: u64 = 16 * MIB;

impl Hugepages {
    /// Read `sysfs/kernel/mm/hugepages/*` and the mount table text
    /// (`/proc/mounts`).
    pub fn read(sysfs: &Path, mounts: &str) -> Hugepages {
        let num = |p: &Path| {
            std::fs::read_to_string(p)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let mut sizes: Vec<PageSize> = std::fs::read_dir(sysfs.join("kernel/mm/hugepages"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let kb = name.strip_prefix("hugepages-")?.strip_suffix("kB")?;
                        Some(PageSize {
                            kb: kb.parse().ok()?,
                            total: num(&e.path().join("nr_hugepages")),
                            free: num(&e.path().join("free_hugepages")),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        sizes.sort_by_key(|s| s.kb);
        let mounts = mounts
            .lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let (_, at, fs) = (f.next()?, f.next()?, f.next()?);
                (fs == "hugetlbfs").then(|| at.to_string())
            })
            .collect();
        Hugepages { sizes, mounts }
    }

    /// The host's hugepages.
    pub fn of_host() -> Hugepages {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        Hugepages::read(Path::new("/sys"), &mounts)
    }

    pub fn free_bytes(&self) -> u64 {
        self.sizes.iter().map(|s| s.free * s.kb * 1024).sum()
    }

    pub fn total_pages(&self) -> u64 {
        self.sizes.iter().map(|s| s.total).sum()
    }

    /// Can EAL start on hugepages at all? `in_memory`: EAL maps pages
    /// anonymously and needs no hugetlbfs mount.
    pub fn check_start(&self, in_memory: bool) -> Result<(), String> {
        if self.total_pages() == 0 {
            return Err(
                "no hugepages are reserved: reserve some, e.g. 1024 x 2 MiB with \
                 `echo 1024 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages` \
                 (or run with --no-huge, for testing only)"
                    .into(),
            );
        }
        if !in_memory && self.mounts.is_empty() {
            return Err("no hugetlbfs is mounted (needed with --file-prefix): \
                 `mkdir -p /dev/hugepages && mount -t hugetlbfs nodev /dev/hugepages`"
                .into());
        }
        Ok(())
    }

    /// Is there room for the packet pool (`pool` bytes, which must fit) and
    /// the connection tables (`tables` bytes, which go on the heap if they
    /// do not)? `Ok(Some(warning))` when only the tables do not fit.
    pub fn check_room(&self, pool: u64, tables: u64, what: &str) -> Result<Option<String>, String> {
        let free = self.free_bytes();
        let page = self
            .sizes
            .iter()
            .find(|s| s.free > 0)
            .map_or(2048, |s| s.kb)
            * 1024;
        let pages = |b: u64| b.div_ceil(page);
        let need = pool + EAL_OVERHEAD;
        let have = format!(
            "{} MiB free in hugepages ({})",
            free / MIB,
            self.sizes
                .iter()
                .map(|s| format!("{} of {} x {} kB free", s.free, s.total, s.kb))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if free < need {
            return Err(format!(
                "too few hugepages: {have}; the packet pool needs {} MiB ({what}) and EAL about {} MiB more: \
                 reserve at least {} more {} kB pages (and {} more for the connection tables on hugepages)",
                pool.div_ceil(MIB),
                EAL_OVERHEAD / MIB,
                pages(need - free),
                page / 1024,
                pages(tables),
            ));
        }
        if tables > 0 && free < need + tables {
            return Ok(Some(format!(
                "too few hugepages for the connection tables: {have}; they need {} MiB beyond the pool's {} MiB, \
                 so they go on the process heap (slower); reserve {} more {} kB pages to have them on hugepages",
                tables.div_ceil(MIB),
                need.div_ceil(MIB),
                pages(need + tables - free),
                page / 1024
            )));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(dir: &Path, kb: u64, total: u64, free: u64) {
        let d = dir.join(format!("kernel/mm/hugepages/hugepages-{kb}kB"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("nr_hugepages"), format!("{total}\n")).unwrap();
        std::fs::write(d.join("free_hugepages"), format!("{free}\n")).unwrap();
    }

    #[test]
    fn reads_sizes_and_mounts() {
        let dir = std::env::temp_dir().join(format!("rvs-huge-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        fake(&dir, 2048, 1024, 1000);
        fake(&dir, 1048576, 0, 0);
        let h = Hugepages::read(
            &dir,
            "proc /proc proc rw 0 0\nnodev /dev/hugepages hugetlbfs rw,pagesize=2M 0 0\n",
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            h.sizes,
            vec![
                PageSize {
                    kb: 2048,
                    total: 1024,
                    free: 1000
                },
                PageSize {
                    kb: 1048576,
                    total: 0,
                    free: 0
                }
            ]
        );
        assert_eq!(h.mounts, vec!["/dev/hugepages"]);
        assert_eq!(h.free_bytes(), 1000 * 2 * MIB);
    }

    fn host(total: u64, free: u64, mounted: bool) -> Hugepages {
        Hugepages {
            sizes: vec![PageSize {
                kb: 2048,
                total,
                free,
            }],
            mounts: if mounted {
                vec!["/dev/hugepages".into()]
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn says_what_is_missing() {
        let e = host(0, 0, true).check_start(true).unwrap_err();
        assert!(e.contains("no hugepages are reserved"), "{e}");
        assert!(e.contains("nr_hugepages"), "{e}");
        let e = host(512, 512, false).check_start(false).unwrap_err();
        assert!(e.contains("no hugetlbfs is mounted"), "{e}");
        assert!(host(512, 512, false).check_start(true).is_ok());

        let pool = 40 * MIB;
        let e = host(64, 25, true).check_room(pool, 0, "x").unwrap_err();
        assert!(e.contains("too few hugepages"), "{e}");
        // 50 MiB free, 56 needed: 3 more 2 MiB pages.
        assert!(e.contains("reserve at least 3 more 2048 kB pages"), "{e}");
        let w = host(100, 40, true).check_room(pool, 300 * MIB, "x");
        assert!(w.unwrap().unwrap().contains("process heap"));
        assert_eq!(
            host(512, 512, true).check_room(pool, 300 * MIB, "x"),
            Ok(None)
        );
    }
}
