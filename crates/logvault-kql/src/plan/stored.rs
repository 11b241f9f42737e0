//! Stored functions: the saved functions of a workspace (Log Analytics' saved searches with a
//! function alias), callable by their alias from any query of the workspace with typed
//! parameters and defaults. Each is bound before the query's own statements, as if the query
//! began with `let Alias = (params) { body };`, so a query's own `let` of the same name wins.

use crate::ast::{LetValue, Query, Statement};
use crate::error::{KqlError, Span};
use crate::plan::{KqlPlan, PlanOptions, TableResolver, plan_parsed};

/// A function stored with a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFunction {
    /// The alias it is called by.
    pub alias: String,
    /// Its definition: `(name:type=default, ...) { body }`.
    pub definition: String,
}

/// Where the planner finds a workspace's stored functions.
pub trait FunctionResolver: Send + Sync {
    /// Every stored function.
    fn functions(&self) -> Vec<StoredFunction>;
}

impl FunctionResolver for Vec<StoredFunction> {
    fn functions(&self) -> Vec<StoredFunction> {
        self.clone()
    }
}

/// Checks a stored function's definition: it must parse as a function.
///
/// # Errors
/// The syntax error, located in the definition.
pub fn check_stored_function(f: &StoredFunction) -> Result<(), KqlError> {
    // A query must end in an expression; `print 0` stands for the caller's.
    let text = format!("let {} = {};\nprint 0", f.alias, f.definition);
    let query = crate::parser::parse(&text).map_err(|e| e.locate(&text))?;
    match query.statements.as_slice() {
        [
            Statement::Let {
                value: LetValue::Function(_),
                ..
            },
            Statement::Expr(_),
        ] => Ok(()),
        _ => Err(KqlError::syntax(
            format!("function {} is not a function definition", f.alias),
            Span::default(),
        )
        .locate(&text)),
    }
}

/// Plans `text` over `tables` with the stored `functions` in scope. Errors in the query are
/// located in its text; errors inside a function's body name the function.
///
/// # Errors
/// As [`crate::plan_query`].
pub fn plan_query_with_functions(
    text: &str,
    tables: &dyn TableResolver,
    functions: &dyn FunctionResolver,
    options: &PlanOptions,
) -> Result<KqlPlan, KqlError> {
    let user = crate::parser::parse(text)?;
    // Each definition is parsed at its place in a virtual text that follows the query (padded
    // with spaces), so that its spans never fall inside the query's.
    let mut virtual_text = String::from(text);
    let mut bound = Vec::new();
    let mut regions = Vec::new();
    for f in functions.functions() {
        let def = format!("let {} = {};", f.alias, f.definition);
        virtual_text.push('\n');
        let start = virtual_text.len();
        let padded = format!("{}{def}\nprint 0", " ".repeat(start));
        // A definition that no longer parses is left out (it was checked when saved).
        if let Ok(parsed) = crate::parser::parse(&padded) {
            bound.extend(
                parsed
                    .statements
                    .into_iter()
                    .filter(|s| matches!(s, Statement::Let { .. })),
            );
            regions.push((start, start + def.len(), f.alias.clone()));
        }
        virtual_text.push_str(&def);
    }
    let mut statements = bound;
    statements.extend(user.statements);
    let query = Query { statements };
    plan_parsed(&query, tables, options).map_err(|e| match e.span() {
        Some(span) if span.start > text.len() => {
            let alias = regions
                .iter()
                .find(|(s, end, _)| (*s..=*end).contains(&span.start))
                .map_or("?", |(_, _, a)| a.as_str());
            e.in_function(alias).locate(&virtual_text)
        }
        _ => e.locate(text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::TableMap;

    fn f(alias: &str, definition: &str) -> StoredFunction {
        StoredFunction {
            alias: alias.into(),
            definition: definition.into(),
        }
    }

    fn opts() -> PlanOptions {
        PlanOptions {
            now_ticks: 0,
            time_range: None,
        }
    }

    #[test]
    fn a_stored_function_is_callable_with_and_without_its_default() {
        let fns = [f("Upto", "(n:long=3) { range x from 1 to n step 1 }")];
        let tables = TableMap::new();
        for q in ["Upto() | count", "Upto(5) | count"] {
            let plan = plan_query_with_functions(q, &tables, &fns.to_vec(), &opts())
                .unwrap_or_else(|e| panic!("{q}: {e}"));
            assert_eq!(plan.schema[0].name, "Count", "{q}");
        }
        // Without the stored functions, the alias is unknown.
        let err = crate::plan_query("Upto(5) | count", &tables, &opts()).unwrap_err();
        assert!(err.to_string().contains("Upto"), "{err}");
    }

    #[test]
    fn a_query_let_shadows_a_stored_function() {
        let fns = [f("Rows", "() { range x from 1 to 3 step 1 }")];
        let q = "let Rows = () { print y = 1 }; Rows()";
        let plan = plan_query_with_functions(q, &TableMap::new(), &fns.to_vec(), &opts()).unwrap();
        assert_eq!(plan.schema[0].name, "y");
    }

    #[test]
    fn errors_are_located_in_the_query_or_named_in_the_function() {
        let fns = [f("Bad", "() { NoSuchTable | take 1 }")];
        let tables = TableMap::new();
        let err = plan_query_with_functions("Bad()", &tables, &fns.to_vec(), &opts()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("in function Bad"), "{text}");
        assert!(text.contains("NoSuchTable"), "{text}");
        let err =
            plan_query_with_functions("print x = 1 | nosuchop", &tables, &fns.to_vec(), &opts())
                .unwrap_err();
        let location = err.location().expect("located");
        assert_eq!(location.line, 1);
    }

    #[test]
    fn definitions_are_checked() {
        assert!(check_stored_function(&f("Ok", "(a:long=1) { print a }")).is_ok());
        assert!(check_stored_function(&f("Broken", "(a:long=) { print a }")).is_err());
    }
}
