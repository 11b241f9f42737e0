//! Integration tests of the KQL crate: one test binary (each links DataFusion).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod basics;
mod common;
mod compare;
mod docs_examples;
mod events;
mod fuzz;
mod kqltest;
mod la_data;
mod la_queries;
mod la_run;
mod la_twins;
mod partition;
mod reshape;
