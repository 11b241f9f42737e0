//! The nodes of the tabular operators (`| where`, `| summarize`, `| join` ...).

use super::{Arg, Assign, ColumnPattern, Expr, Ident, SortKey};
use crate::error::Span;
use crate::types::KustoType;

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
