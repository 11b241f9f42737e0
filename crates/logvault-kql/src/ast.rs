//! The syntax tree of a KQL query.
//!
//! Scalar and tabular expressions share one tree ([`Expr`]): a name may be a column, a scalar
//! `let`, a tabular `let` or a table, and only the planner, which knows the scope, can tell.

use crate::error::Span;
use crate::types::KustoType;

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

/// `union` and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Union {
    /// `kind=inner` (only common columns) instead of outer.
    pub inner: bool,
    /// `withsource=Name`: a column naming each row's table.
    pub with_source: Option<Ident>,
    /// `isfuzzy=true`: tables that do not resolve are left out.
    pub fuzzy: bool,
    /// The tables: names (maybe with wildcards) or tabular expressions.
    pub tables: Vec<Expr>,
    /// Where.
    pub span: Span,
}

/// `search`.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    /// `in (T1, T2)`: the tables searched (all when empty).
    pub tables: Vec<Ident>,
    /// The predicate.
    pub predicate: Expr,
    /// `kind=case_sensitive`.
    pub case_sensitive: bool,
}

/// `evaluate plugin(args)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluate {
    /// The plugin.
    pub plugin: Ident,
    /// Its arguments.
    pub args: Vec<Arg>,
    /// An output schema given after `:`.
    pub schema: Option<Vec<(Ident, KustoType)>>,
    /// Whether the schema starts with `*` (the input's columns).
    pub schema_star: bool,
}

/// The kinds of joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// Kusto's default: left rows deduplicated on the key, then inner.
    InnerUnique,
    /// Every matching pair.
    Inner,
    /// Left outer.
    LeftOuter,
    /// Right outer.
    RightOuter,
    /// Full outer.
    FullOuter,
    /// Left rows with a match.
    LeftSemi,
    /// Right rows with a match.
    RightSemi,
    /// Left rows without a match.
    LeftAnti,
    /// Right rows without a match.
    RightAnti,
}

/// `mv-expand` items.
#[derive(Debug, Clone, PartialEq)]
pub struct MvItem {
    /// `name =`.
    pub name: Option<Ident>,
    /// The array or bag expanded.
    pub expr: Expr,
    /// `to typeof(T)`.
    pub to: Option<KustoType>,
}

/// One part of a `parse` pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum ParsePart {
    /// A string to find.
    Text(String),
    /// A column to extract, with its type.
    Column(Ident, KustoType),
    /// `*`: skip anything.
    Star,
}

/// The tabular operators.
#[derive(Debug, Clone, PartialEq)]
pub struct Operator {
    /// Which one.
    pub kind: OpKind,
    /// Where it is written.
    pub span: Span,
}

/// The tabular operators and their arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum OpKind {
    /// `where` / `filter`.
    Where(Expr),
    /// `project`.
    Project(Vec<Assign>),
    /// `project-away`.
    ProjectAway(Vec<ColumnPattern>),
    /// `project-keep`.
    ProjectKeep(Vec<ColumnPattern>),
    /// `project-rename new = old, ...`.
    ProjectRename(Vec<(Ident, Ident)>),
    /// `project-reorder`.
    ProjectReorder(Vec<(ColumnPattern, Option<bool>)>),
    /// `extend`.
    Extend(Vec<Assign>),
    /// `summarize aggs by keys`.
    Summarize {
        /// The aggregations.
        aggs: Vec<Assign>,
        /// The grouping keys.
        by: Vec<Assign>,
    },
    /// `count`.
    Count,
    /// `take` / `limit`.
    Take(Expr),
    /// `top n by keys`.
    Top {
        /// How many.
        n: Expr,
        /// Sort keys.
        by: Vec<SortKey>,
    },
    /// `sort by` / `order by`.
    Sort(Vec<SortKey>),
    /// `distinct`.
    Distinct(Vec<Expr>),
    /// `union`.
    Union(Union),
    /// `join`.
    Join {
        /// The kind.
        kind: JoinKind,
        /// The right side.
        right: Box<Expr>,
        /// The `on` clause: names, `$left.a == $right.b` equalities, or conditions.
        on: Vec<Expr>,
    },
    /// `lookup`.
    Lookup {
        /// Left outer (default) or inner.
        inner: bool,
        /// The dimension table.
        right: Box<Expr>,
        /// The `on` clause.
        on: Vec<Expr>,
    },
    /// `as Name`.
    As(Ident),
    /// `parse` / `parse-where`.
    Parse {
        /// The text parsed.
        expr: Expr,
        /// The pattern.
        parts: Vec<ParsePart>,
        /// `kind=regex` (the pattern's text is regex).
        regex: bool,
        /// `kind=relaxed`.
        relaxed: bool,
        /// `parse-where`: drop rows that do not match.
        filter: bool,
        /// Regex flags (`flags=Ui`).
        flags: String,
    },
    /// `parse-kv expr as (cols) with (pair_delimiter=..., kv_delimiter=..., ...)`.
    ParseKv {
        /// The text parsed.
        expr: Expr,
        /// The keys extracted, with types.
        columns: Vec<(Ident, KustoType)>,
        /// Named parameters.
        params: Vec<(String, Expr)>,
    },
    /// `mv-expand`.
    MvExpand {
        /// The expanded columns.
        items: Vec<MvItem>,
        /// `with_itemindex=Name`.
        item_index: Option<Ident>,
        /// `bagexpansion=array`.
        bag_array: bool,
        /// `limit n`.
        limit: Option<Expr>,
    },
    /// `mv-apply items on (subquery)`.
    MvApply {
        /// The expanded columns.
        items: Vec<MvItem>,
        /// `with_itemindex=Name`.
        item_index: Option<Ident>,
        /// The operators applied to each row's expansion.
        ops: Vec<Operator>,
    },
    /// `make-series`.
    MakeSeries(Box<MakeSeries>),
    /// `serialize [extend-like assignments]`.
    Serialize(Vec<Assign>),
    /// `sample n`.
    Sample(Expr),
    /// `sample-distinct n of col`.
    SampleDistinct(Expr, Expr),
    /// `top-nested`.
    TopNested(Vec<TopNestedLevel>),
    /// `getschema`.
    GetSchema,
    /// `evaluate plugin(...)`.
    Evaluate(Evaluate),
    /// `invoke f(args)`.
    Invoke(Expr),
    /// `render chart [with (...)]`: a visualization hint.
    Render {
        /// The chart kind.
        chart: String,
    },
    /// `search` in a pipeline.
    Search(Search),
    /// `consume`: reads everything, returns nothing.
    Consume,
    /// `scan`: a state machine over the serialized rows.
    Scan(Box<Scan>),
    /// `partition by Column (subquery)`: the subquery run on each partition's rows.
    Partition(Box<Partition>),
}

/// `partition [hint.strategy=S] [hints] by Column (subquery)` or `... by Column { source }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    /// The column whose values partition the rows.
    pub column: Ident,
    /// `hint.strategy`: `native`, `shuffle` or `legacy` (Kusto's default).
    pub strategy: Option<String>,
    /// The subquery.
    pub body: PartitionBody,
}

/// What `partition` runs on each partition.
#[derive(Debug, Clone, PartialEq)]
pub enum PartitionBody {
    /// `( op | op ... )`: operators applied to the partition's rows.
    Ops(Vec<Operator>),
    /// `{ tabular expression }`: a query with its own source, where `toscalar(Column)` is the
    /// partition's value (the legacy strategy).
    Source(Box<Expr>),
}

/// `scan [with_match_id=Id] [declare (cols)] with (steps)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scan {
    /// `with_match_id=Name`: a column with each output row's match number.
    pub match_id: Option<Ident>,
    /// Declared columns, with their types and defaults.
    pub declare: Vec<(Ident, KustoType, Option<Expr>)>,
    /// The steps, in order.
    pub steps: Vec<ScanStep>,
}

/// Which rows a scan step outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanOutput {
    /// Every matching row (the default).
    All,
    /// The last of a series of matches.
    Last,
    /// None.
    None,
}

/// `step Name [output=...]: condition [=> col = expr, ...];`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanStep {
    /// The step's name (`Name.col` reads its state).
    pub name: Ident,
    /// What it outputs.
    pub output: ScanOutput,
    /// The condition.
    pub condition: Expr,
    /// The assignments to declared columns.
    pub assigns: Vec<(Ident, Expr)>,
}

/// `make-series` arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct MakeSeries {
    /// `kind=nonempty`: one row of defaults even without input rows.
    pub nonempty: bool,
    /// The aggregations, each with its default.
    pub aggs: Vec<(Assign, Option<Expr>)>,
    /// The axis column.
    pub on: Expr,
    /// `from`.
    pub from: Option<Expr>,
    /// `to`.
    pub to: Option<Expr>,
    /// `step`.
    pub step: Expr,
    /// `by` keys.
    pub by: Vec<Assign>,
}

/// One level of `top-nested`.
#[derive(Debug, Clone, PartialEq)]
pub struct TopNestedLevel {
    /// How many values (all when `None`).
    pub n: Option<Expr>,
    /// `of Column` (or `of name = expr`).
    pub of: Assign,
    /// `with others = value`.
    pub others: Option<Expr>,
    /// `by Aggregation`.
    pub by: Assign,
    /// Ascending.
    pub asc: bool,
}
