//! Round trips against a scripted HTTP server on 127.0.0.1 (retries, the 401 loop, aborts).
