//! Every wire parser, view, `Repr` round trip and checksum on the input
//! and a few mutations of it (`rvs::wire::fuzz`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rvs::wire::fuzz::fuzz_one(data);
});
