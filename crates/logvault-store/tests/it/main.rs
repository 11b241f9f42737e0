//! Integration tests of the encrypted store (one binary, so DataFusion is linked once).

mod catalog;
mod common;
mod datafusion_read;
mod double;
mod integrity;
mod privacy;
mod retention;
mod rotation;
mod segments;
