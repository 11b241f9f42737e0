//! The crate's error type: every syntax or semantic error says what is wrong and where (line,
//! column, the line itself with a caret under the fault), and suggests the closest name.

use std::fmt;

use datafusion::error::DataFusionError;

/// A byte range of the query text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The bytes `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Self {
            start,
            end: end.max(start),
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// Where an error is: 1-based line and column (in characters), the line's text and the width
/// of the fault on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The text of the line.
    pub source_line: String,
    /// How many characters to underline.
    pub width: usize,
}

impl Location {
    /// The location of `span` in `text`.
    pub fn of(text: &str, span: Span) -> Location {
        let start = span.start.min(text.len());
        let start = (0..=start)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line = text[..start].matches('\n').count() + 1;
        let column = text[line_start..start].chars().count() + 1;
        let end = span.end.clamp(start, line_end);
        let end = (end..=line_end)
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(line_end);
        let width = text[start..end].chars().count().max(1);
        Location {
            line,
            column,
            source_line: text[line_start..line_end].trim_end_matches('\r').to_owned(),
            width,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gutter = self.line.to_string();
        let pad = " ".repeat(gutter.len());
        // Tabs keep their width under the caret.
        let lead: String = self
            .source_line
            .chars()
            .take(self.column - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(
            f,
            " at line {}, column {}:\n{gutter} | {}\n{pad} | {lead}{}",
            self.line,
            self.column,
            self.source_line,
            "^".repeat(self.width)
        )
    }
}

fn at(location: &Option<Location>) -> String {
    location
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// Errors of KQL parsing and planning.
#[derive(Debug, thiserror::Error)]
pub enum KqlError {
    /// The text is not KQL.
    #[error("syntax error: {message}{}", at(.location))]
    Syntax {
        /// What is wrong.
        message: String,
        /// Where.
        span: Span,
        /// Line, column and text, once known.
        location: Option<Location>,
    },
    /// The query is KQL but means nothing: an unknown name, a type mismatch, a wrong argument.
    #[error("{message}{}", at(.location))]
    Semantic {
        /// What is wrong, with a suggestion when a close name exists.
        message: String,
        /// Where.
        span: Span,
        /// Line, column and text, once known.
        location: Option<Location>,
    },
    /// KQL that logvault does not implement (yet).
    #[error("not supported: {message}{}", at(.location))]
    Unsupported {
        /// What is not supported.
        message: String,
        /// Where.
        span: Span,
        /// Line, column and text, once known.
        location: Option<Location>,
    },
    /// DataFusion refused the plan built from a valid query.
    #[error("planning failed: {0}")]
    Plan(#[from] DataFusionError),
}

impl From<arrow::error::ArrowError> for KqlError {
    fn from(e: arrow::error::ArrowError) -> Self {
        Self::Plan(DataFusionError::ArrowError(Box::new(e), None))
    }
}

impl KqlError {
    /// A syntax error at `span`.
    pub fn syntax(message: impl Into<String>, span: Span) -> Self {
        Self::Syntax {
            message: message.into(),
            span,
            location: None,
        }
    }

    /// A semantic error at `span`.
    pub fn semantic(message: impl Into<String>, span: Span) -> Self {
        Self::Semantic {
            message: message.into(),
            span,
            location: None,
        }
    }

    /// An unsupported feature at `span`.
    pub fn unsupported(message: impl Into<String>, span: Span) -> Self {
        Self::Unsupported {
            message: message.into(),
            span,
            location: None,
        }
    }

    /// Where the error is in the text, if it is tied to a place.
    pub fn span(&self) -> Option<Span> {
        match self {
            Self::Syntax { span, .. }
            | Self::Semantic { span, .. }
            | Self::Unsupported { span, .. } => Some(*span),
            Self::Plan(_) => None,
        }
    }

    /// The line and column of the error, once [`KqlError::locate`] has run.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Self::Syntax { location, .. }
            | Self::Semantic { location, .. }
            | Self::Unsupported { location, .. } => location.as_ref(),
            Self::Plan(_) => None,
        }
    }

    /// The same error, its message saying it is inside the stored function `alias`.
    #[must_use]
    pub fn in_function(self, alias: &str) -> Self {
        match self {
            Self::Syntax {
                message,
                span,
                location,
            } => Self::Syntax {
                message: format!("in function {alias}: {message}"),
                span,
                location,
            },
            Self::Semantic {
                message,
                span,
                location,
            } => Self::Semantic {
                message: format!("in function {alias}: {message}"),
                span,
                location,
            },
            Self::Unsupported {
                message,
                span,
                location,
            } => Self::Unsupported {
                message: format!("in function {alias}: {message}"),
                span,
                location,
            },
            e @ Self::Plan(_) => e,
        }
    }

    /// Fills in the line, column and text of the error from the query `text`.
    #[must_use]
    pub fn locate(mut self, text: &str) -> Self {
        match &mut self {
            Self::Syntax { span, location, .. }
            | Self::Semantic { span, location, .. }
            | Self::Unsupported { span, location, .. } => {
                if location.is_none() {
                    *location = Some(Location::of(text, *span));
                }
            }
            Self::Plan(_) => {}
        }
        self
    }
}

/// The closest of `candidates` to `name` (case-insensitive Jaro-Winkler and Levenshtein), if
/// one is close enough to be what was meant.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let lower = name.to_lowercase();
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let cl = c.to_lowercase();
        let score = if cl == lower {
            2.0
        } else {
            let jw = strsim::jaro_winkler(&lower, &cl);
            let lev = strsim::levenshtein(&lower, &cl);
            if lev <= 2 || jw >= 0.85 {
                jw + if lev <= 2 { 0.1 } else { 0.0 }
            } else {
                0.0
            }
        };
        if score > 0.0 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c.to_owned())
}

/// " (did you mean 'X'?)" or nothing.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, candidates)
        .map(|c| format!(" (did you mean '{c}'?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_points_at_the_fault() {
        let text = "T\n| where Computr == 'x'";
        let span = Span::new(10, 17);
        let e = KqlError::semantic("unknown column 'Computr'", span).locate(text);
        let shown = e.to_string();
        assert!(shown.contains("line 2, column 9"), "{shown}");
        assert!(shown.contains("| where Computr == 'x'"), "{shown}");
        assert!(shown.ends_with("        ^^^^^^^"), "{shown}");
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            closest("Computr", ["Account", "Computer", "TimeGenerated"]),
            Some("Computer".into())
        );
        assert_eq!(
            closest("timegenerated", ["TimeGenerated"]),
            Some("TimeGenerated".into())
        );
        assert_eq!(closest("zzz", ["Account", "Computer"]), None);
    }
}
