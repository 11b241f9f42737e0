//! Hash functions.

use super::Impl;

pub(crate) const FUNCTIONS: &[(&str, Impl)] = &[];
