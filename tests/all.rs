//! The one integration-test binary: every suite links against the same build.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;
mod support;
