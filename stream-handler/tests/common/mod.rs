//! Helpers shared by the integration tests (and the benches): fixtures and generated stream
//! events, a fake of the API's publish endpoint, and a Lambda Runtime API emulator.
#![allow(dead_code)]

pub mod fake_api;
pub mod records;
pub mod runtime_api;
