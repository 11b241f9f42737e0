//! The server's integration tests (one binary: each test binary links DataFusion).

fn main() {}
