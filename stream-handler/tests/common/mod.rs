//! Helpers for the binary's tests (and the cold-start bench): the fixtures and the fake of the
//! API's publish endpoint are the pipeline library's (shared, not copied), plus a Lambda
//! Runtime API emulator that only the binary needs.
#![allow(dead_code)]

#[path = "../../../pipeline/tests/common/fake_api.rs"]
pub mod fake_api;
#[path = "../../../pipeline/tests/common/records.rs"]
pub mod records;
pub mod runtime_api;
