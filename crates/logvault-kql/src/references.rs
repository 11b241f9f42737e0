//! The other workspaces a query names with `workspace("name").Table`: a caller must make their
//! tables available (and check that the query may read them) before planning.

use crate::KqlError;
use crate::lexer::{Tok, tokenize};

/// The distinct arguments of `workspace("...")` calls followed by `.` in `text`, in order of
/// first appearance. Only string literals count: `workspace(x)` with a name bound by `let` is
/// refused by the planner as not constant.
///
/// # Errors
/// A lexical error in `text` (the planner reports the same one).
///
/// ```
/// let names = logvault_kql::referenced_workspaces(
///     r#"union App, workspace("ws-b").App, workspace('ws-c').App | count"#,
/// )
/// .unwrap();
/// assert_eq!(names, vec!["ws-b", "ws-c"]);
/// ```
pub fn referenced_workspaces(text: &str) -> Result<Vec<String>, KqlError> {
    let tokens = tokenize(text)?;
    let mut names: Vec<String> = Vec::new();
    for window in tokens.windows(5) {
        if let [a, b, c, d, e] = window
            && matches!(&a.tok, Tok::Ident(w) if w == "workspace")
            && matches!(b.tok, Tok::Sym("("))
            && matches!(d.tok, Tok::Sym(")"))
            && matches!(e.tok, Tok::Sym("."))
            && let Tok::Str(name) = &c.tok
            && !names.contains(name)
        {
            names.push(name.clone());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_workspace_calls_followed_by_a_table_count() {
        let text = r#"
            // workspace("in-a-comment").T
            let w = "not-me";
            workspace("a").App
            | union (workspace("b").App), workspace("a").Other
            | where Name == 'workspace("c").T'
            | extend x = workspace
        "#;
        assert_eq!(referenced_workspaces(text).unwrap(), vec!["a", "b"]);
        assert!(referenced_workspaces("App | count").unwrap().is_empty());
        assert!(referenced_workspaces("App | where x == \"unterminated").is_err());
    }
}
