//! The NAT, DR and tunnel rewrites, both directions, every method, on the
//! input as a frame (`rvs::lb::forward::fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rvs::lb::forward::fuzz_one(data);
});
