//! Tests of the non-blocking connection (written next).
