//! Payment webhook tests.
