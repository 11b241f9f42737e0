//! Vectorized string kernels with Kusto's semantics: `has`, `hasprefix`, `hassuffix` match
//! whole *terms* (maximal runs of letters and digits), case-insensitively unless `_cs`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use arrow::datatypes::DataType;
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use regex::{Regex, RegexBuilder};

/// Which term test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TermOp {
    /// `has`: the needle is a whole term (or a run of whole terms).
    Has,
    /// `hasprefix`: a term starts with the needle.
    Prefix,
    /// `hassuffix`: a term ends with the needle.
    Suffix,
}

/// A call of the term test `op` of `needle` in `text`.
pub fn term_call(op: TermOp, text: Expr, needle: Expr, cs: bool) -> Expr {
    let udf = ScalarUDF::from(TermUdf::new(op, cs));
    Expr::ScalarFunction(ScalarFunction::new_udf(Arc::new(udf), vec![text, needle]))
}

fn is_term_char(c: char) -> bool {
    c.is_alphanumeric()
}

/// A compiled needle.
pub struct TermMatcher {
    op: TermOp,
    re: Option<Regex>,
    check_start: bool,
    check_end: bool,
}

impl TermMatcher {
    /// Compiles `needle` for `op`.
    pub fn new(op: TermOp, needle: &str, cs: bool) -> Self {
        let re = if needle.is_empty() {
            None
        } else {
            RegexBuilder::new(&regex::escape(needle))
                .case_insensitive(!cs)
                .build()
                .ok()
        };
        let first_term = needle.chars().next().is_some_and(is_term_char);
        let last_term = needle.chars().last().is_some_and(is_term_char);
        Self {
            op,
            re,
            check_start: first_term && matches!(op, TermOp::Has | TermOp::Prefix),
            check_end: last_term && matches!(op, TermOp::Has | TermOp::Suffix),
        }
    }

    /// Whether `hay` matches.
    pub fn matches(&self, hay: &str) -> bool {
        let Some(re) = &self.re else {
            return true;
        };
        for m in re.find_iter(hay) {
            let before_ok = !self.check_start
                || !hay[..m.start()]
                    .chars()
                    .next_back()
                    .is_some_and(is_term_char);
            let after_ok =
                !self.check_end || !hay[m.end()..].chars().next().is_some_and(is_term_char);
            if before_ok && after_ok {
                return true;
            }
        }
        let _ = self.op;
        false
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TermUdf {
    op: TermOp,
    cs: bool,
    name: String,
    signature: Signature,
}

impl TermUdf {
    fn new(op: TermOp, cs: bool) -> Self {
        let base = match op {
            TermOp::Has => "has",
            TermOp::Prefix => "hasprefix",
            TermOp::Suffix => "hassuffix",
        };
        Self {
            op,
            cs,
            name: if cs {
                format!("{base}_cs")
            } else {
                base.to_owned()
            },
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

fn strings(a: &ArrayRef) -> Result<Vec<Option<&str>>> {
    Ok(match a.data_type() {
        DataType::Utf8 => a.as_string::<i32>().iter().collect(),
        DataType::LargeUtf8 => a.as_string::<i64>().iter().collect(),
        DataType::Utf8View => a.as_string_view().iter().collect(),
        DataType::Null => vec![None; a.len()],
        other => return exec_err!("has: expected text, found {other}"),
    })
}

impl ScalarUDFImpl for TermUdf {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [text, needle] = args.args.as_slice() else {
            return exec_err!("{} takes two arguments", self.name);
        };
        let rows = args.number_rows;
        // The usual case: a constant needle, compiled once per batch.
        if let ColumnarValue::Scalar(s) = needle {
            let n = match s {
                ScalarValue::Utf8(v) | ScalarValue::Utf8View(v) | ScalarValue::LargeUtf8(v) => {
                    v.clone()
                }
                ScalarValue::Null => None,
                other => Some(other.to_string()),
            };
            let Some(n) = n else {
                return Ok(ColumnarValue::Scalar(ScalarValue::Boolean(None)));
            };
            let m = TermMatcher::new(self.op, &n, self.cs);
            return match text {
                ColumnarValue::Scalar(t) => {
                    let arr = t.to_array_of_size(1)?;
                    let v = strings(&arr)?;
                    Ok(ColumnarValue::Scalar(ScalarValue::Boolean(
                        v.first().copied().flatten().map(|h| m.matches(h)),
                    )))
                }
                ColumnarValue::Array(a) => {
                    let out: BooleanArray = strings(a)?
                        .into_iter()
                        .map(|h| h.map(|h| m.matches(h)))
                        .collect();
                    Ok(ColumnarValue::Array(Arc::new(out)))
                }
            };
        }
        let texts = text.to_array(rows)?;
        let needles = needle.to_array(rows)?;
        let (t, n) = (strings(&texts)?, strings(&needles)?);
        let out: BooleanArray = t
            .into_iter()
            .zip(n)
            .map(|(h, n)| match (h, n) {
                (Some(h), Some(n)) => Some(TermMatcher::new(self.op, n, self.cs).matches(h)),
                _ => None,
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_matches_whole_terms() {
        let m = TermMatcher::new(TermOp::Has, "north", false);
        assert!(m.matches("North America"));
        assert!(m.matches("going north."));
        assert!(!m.matches("northern lights"));
        assert!(!m.matches("to the northeast"));
        let m = TermMatcher::new(TermOp::Has, "North", true);
        assert!(!m.matches("north america"));
        let m = TermMatcher::new(TermOp::Has, "10.0.0.1", false);
        assert!(m.matches("from 10.0.0.1:443"));
        assert!(!m.matches("from 110.0.0.1"));
    }

    #[test]
    fn prefix_and_suffix() {
        assert!(TermMatcher::new(TermOp::Prefix, "nor", false).matches("Northern"));
        assert!(!TermMatcher::new(TermOp::Prefix, "ort", false).matches("Northern"));
        assert!(TermMatcher::new(TermOp::Suffix, "ern", false).matches("Northern lights"));
        assert!(!TermMatcher::new(TermOp::Suffix, "ern", false).matches("Northerner"));
    }
}
