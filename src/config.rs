//! rvsd's daemon configuration file.
