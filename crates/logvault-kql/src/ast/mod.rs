//! The syntax tree of a KQL query.
//!
//! Scalar and tabular expressions share one tree ([`Expr`]): a name may be a column, a scalar
//! `let`, a tabular `let` or a table, and only the planner, which knows the scope, can tell.
//!
//! The tabular operators' nodes are in `operators.rs`.

use crate::error::Span;
use crate::types::KustoType;

mod operators;

pub use operators::*;

/// A name and where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    /// The name, as written (KQL names are case-sensitive).
    pub name: String,
    /// Where.
    pub span: Span,
}

/// A whole query: `let` statements, then one tabular expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The statements, in order.
    pub statements: Vec<Statement>,
}

/// One statement of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// `let name = value`.
    Let {
        /// The name bound.
        name: Ident,
        /// What it is bound to.
        value: LetValue,
    },
    /// A tabular (or scalar, for `print`-less scalars) expression whose result is returned.
    Expr(Expr),
    /// `set option = value`, `declare query_parameters(...)`, ...: accepted and ignored.
    Ignored(Span),
    /// `set option = value` with a value the planner reads (`query_bin_auto_size`,
    /// `query_bin_auto_at`).
    Set(Ident, Expr),
}

/// What a `let` binds.
#[derive(Debug, Clone, PartialEq)]
pub enum LetValue {
    /// A scalar or tabular expression.
    Expr(Expr),
    /// A user-defined function (`(a:long, b:string="x") { ... }`, or `view () { ... }`).
    Function(Lambda),
    /// `declare pattern P = (params)[path] { (args).[path] = { query }; ... }`.
    Pattern(Pattern),
}

/// A pattern: tabular queries chosen by constant arguments (and a path).
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    /// The number of arguments.
    pub params: usize,
    /// The cases: their arguments, their path and their query.
    pub cases: Vec<PatternCase>,
}

/// One case of a pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternCase {
    /// The argument values (constants).
    pub args: Vec<Expr>,
    /// The path value (`.["x"]`), if the pattern has a path.
    pub path: Option<Expr>,
    /// The query.
    pub body: Vec<Statement>,
}

/// A user-defined function.
#[derive(Debug, Clone, PartialEq)]
pub struct Lambda {
    /// Its parameters.
    pub params: Vec<Param>,
    /// Its body: `let`s and a final expression.
    pub body: Vec<Statement>,
    /// Where the function is written.
    pub span: Span,
    /// Declared with `view`: the table it returns takes part in `union *` and `search`.
    pub view: bool,
}

/// A parameter of a user-defined function.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// Its name.
    pub name: Ident,
    /// Its type: a scalar type, or a tabular schema (`T:(x:long)`, `T:(*)`).
    pub ty: ParamType,
    /// Its default value.
    pub default: Option<Expr>,
}

/// The type of a parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamType {
    /// A scalar of this type.
    Scalar(KustoType),
    /// A table with at least these columns.
    Tabular(Vec<(Ident, KustoType)>),
}

/// A scalar or tabular expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where.
    pub span: Span,
}

/// Literal values.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A typed null (`long(null)`, `datetime(null)`, ...).
    Null(KustoType),
    /// `true` / `false`.
    Bool(bool),
    /// An `int` (`int(5)`).
    Int(i32),
    /// A `long`.
    Long(i64),
    /// A `real`.
    Real(f64),
    /// A `decimal`, as its text.
    Decimal(String),
    /// A `string`.
    String(String),
    /// A `datetime`, in 100 ns ticks since the Unix epoch.
    DateTime(i64),
    /// A `timespan`, in 100 ns ticks.
    Timespan(i64),
    /// A `guid`, in its canonical lower-case text form.
    Guid(String),
    /// A `dynamic` value.
    Dynamic(serde_json::Value),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `or`
    Or,
    /// `and`
    And,
    /// `==`
    Eq,
    /// `!=`, `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `=~` (case-insensitive equality)
    EqCi,
    /// `!~`
    NotEqCi,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// A string operator (`has`, `!contains`, `startswith_cs`, `matches regex`, ...).
    Str(StrOp),
}

/// The string operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrOp {
    /// Which test.
    pub kind: StrOpKind,
    /// Case-sensitive (`_cs`).
    pub cs: bool,
    /// Negated (`!`).
    pub negated: bool,
}

/// The tests of the string operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrOpKind {
    /// `has`: whole terms.
    Has,
    /// `hasprefix`: a term starts with.
    HasPrefix,
    /// `hassuffix`: a term ends with.
    HasSuffix,
    /// `contains`: substring.
    Contains,
    /// `startswith`.
    StartsWith,
    /// `endswith`.
    EndsWith,
    /// `matches regex`.
    MatchesRegex,
    /// `has_any`: any of a list of terms.
    HasAny,
    /// `has_all`: all of a list of terms.
    HasAll,
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `+x`
    Plus,
}

/// One argument of a function call: an expression, maybe named (`columnsConflict='x'`).
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    /// The name, for named arguments.
    pub name: Option<Ident>,
    /// The value.
    pub value: Expr,
}

/// The kinds of expressions.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// A literal.
    Literal(Literal),
    /// A name: column, `let`, table or parameter.
    Name(String),
    /// `*` (in `arg_max(x, *)`, `count(*)`...).
    Star,
    /// `$left.x` / `$right.x` in join conditions.
    JoinSide {
        /// Left (`true`) or right.
        left: bool,
        /// The column.
        column: Ident,
    },
    /// `d.a`.
    Member(Box<Expr>, Ident),
    /// `d['x']`, `d[0]`.
    Index(Box<Expr>, Box<Expr>),
    /// `-x`.
    Unary(UnaryOp, Box<Expr>),
    /// `a op b`.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `x in (a, b)`, `x !in (T | project c)`, `x in~ (...)`.
    In {
        /// The value tested.
        lhs: Box<Expr>,
        /// The list (or one tabular expression, or a dynamic array).
        list: Vec<Expr>,
        /// `!in`.
        negated: bool,
        /// `in~` (case-insensitive).
        ci: bool,
    },
    /// `x between (a .. b)`.
    Between {
        /// The value tested.
        lhs: Box<Expr>,
        /// Lower bound (inclusive).
        low: Box<Expr>,
        /// Upper bound (inclusive).
        high: Box<Expr>,
        /// `!between`.
        negated: bool,
    },
    /// A function call.
    Call {
        /// The function.
        name: Ident,
        /// Its arguments.
        args: Vec<Arg>,
    },
    /// `typeof(long)`: a type as a value (in `mv-expand ... to typeof(...)`).
    TypeOf(KustoType),
    /// `source | op | op ...`.
    Pipe {
        /// The source.
        source: Box<Expr>,
        /// The operators applied in order.
        ops: Vec<Operator>,
    },
    /// `datatable(a:long, ...) [values]`.
    Datatable {
        /// Columns.
        columns: Vec<(Ident, KustoType)>,
        /// Values, row after row.
        values: Vec<Expr>,
    },
    /// `print a = 1, 2`.
    Print(Vec<Assign>),
    /// `range x from a to b step s`.
    Range {
        /// The column.
        column: Ident,
        /// First value.
        from: Box<Expr>,
        /// Last value (inclusive).
        to: Box<Expr>,
        /// Step.
        step: Box<Expr>,
    },
    /// `union ...` as the start of a query.
    Union(Union),
    /// `search ...` as the start of a query.
    Search(Box<Search>),
    /// `evaluate plugin(...)` as the start of a query.
    Evaluate(Evaluate),
}

/// `name = expr`, `(a, b) = expr` or just `expr`.
#[derive(Debug, Clone, PartialEq)]
pub struct Assign {
    /// The names given (several for functions returning several columns).
    pub names: Vec<Ident>,
    /// The value.
    pub expr: Expr,
}

/// A sort key.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    /// The value sorted by.
    pub expr: Expr,
    /// Ascending (`asc`); Kusto's default is descending.
    pub asc: bool,
    /// Nulls first; Kusto's default is nulls last when descending, first when ascending.
    pub nulls_first: bool,
}

/// A column name pattern (`Name`, `Prefix*`, `*`).
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnPattern {
    /// The pattern.
    pub pattern: String,
    /// Where.
    pub span: Span,
}

impl ColumnPattern {
    /// Whether the pattern has a wildcard.
    pub fn is_wildcard(&self) -> bool {
        self.pattern.contains('*')
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        wildcard_match(&self.pattern, name)
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let mut rest = text;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else if let Some(at) = rest.find(part) {
            rest = &rest[at + part.len()..];
        } else {
            return false;
        }
    }
    true
}
