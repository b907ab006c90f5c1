//! The whole datapath: bursts of frames split from the input through two
//! workers, time advancing, the control thread's part in between
//! (`rvs::datapath::fuzzkit` documents the input's records).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rvs::datapath::fuzzkit::fuzz_one(data);
});
