//! Series functions over dynamic arrays.

use super::Impl;

pub(crate) const FUNCTIONS: &[(&str, Impl)] = &[];
