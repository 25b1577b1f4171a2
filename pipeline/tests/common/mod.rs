//! Helpers shared by the integration tests and the benches (the stream-handler binary's tests
//! include them too): fixtures and generated stream events, and a fake of the API's publish
//! endpoint.
#![allow(dead_code)]

pub mod fake_api;
pub mod records;
