//! ARP, neighbour discovery and ping replies written in place by
//! `net::classify` (`rvs::net::fuzzkit`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rvs::net::fuzzkit::fuzz_one(data);
});
