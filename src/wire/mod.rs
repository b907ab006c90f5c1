//! Zero-copy typed views over packet bytes (one file per protocol).
