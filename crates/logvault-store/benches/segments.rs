//! Segment write and read throughput (placeholder, replaced below).
fn main() {}
