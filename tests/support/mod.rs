//! Shared test machinery: spawning the real binary, the mock Responses server, transcripts.
