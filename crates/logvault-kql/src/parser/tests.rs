#![allow(clippy::unwrap_used)]

use super::parse;
use crate::ast::{BinOp, ExprKind, LetValue, OpKind, Statement, StrOpKind};

fn ops(text: &str) -> Vec<OpKind> {
    let q = parse(text).unwrap();
    let Some(Statement::Expr(e)) = q.statements.last() else {
        panic!("no expression");
    };
    match &e.kind {
        ExprKind::Pipe { ops, .. } => ops.iter().map(|o| o.kind.clone()).collect(),
        _ => Vec::new(),
    }
}

#[test]
fn pipeline_of_operators() {
    let o = ops(
        "SigninLogs | where ResultType == '0' and UserPrincipalName has 'bob' \
                 | summarize count() by bin(TimeGenerated, 1h), AppDisplayName \
                 | project-away count_ | sort by TimeGenerated asc nulls last | take 10",
    );
    assert_eq!(o.len(), 5);
    let OpKind::Where(w) = &o[0] else { panic!() };
    let ExprKind::Binary(BinOp::And, _, r) = &w.kind else {
        panic!("{w:?}")
    };
    assert!(
        matches!(&r.kind, ExprKind::Binary(BinOp::Str(s), _, _) if s.kind == StrOpKind::Has && !s.cs)
    );
    let OpKind::Summarize { aggs, by } = &o[1] else {
        panic!()
    };
    assert_eq!((aggs.len(), by.len()), (1, 2));
    let OpKind::Sort(keys) = &o[3] else { panic!() };
    assert!(keys[0].asc && !keys[0].nulls_first);
}

#[test]
fn lets_functions_and_sources() {
    let q = parse(
        "let n = 5; let f = (x:long, y:string = 'a') { x * 2 }; let T = datatable(a:long, b:string) [1, 'x', 2, 'y'];\n\
         T | extend c = f(a) | join kind=leftouter (range i from 1 to n step 1) on $left.a == $right.i",
    )
    .unwrap();
    assert_eq!(q.statements.len(), 4);
    assert!(
        matches!(&q.statements[1], Statement::Let { value: LetValue::Function(l), .. } if l.params.len() == 2)
    );
}

#[test]
fn member_access_and_in() {
    let o = ops("T | where d.a.b[0] in ('x', 'y') and s !in~ ('z') and x between (1 .. 10)");
    assert_eq!(o.len(), 1);
}

#[test]
fn errors_point_at_the_token() {
    let e = parse("T\n| summarise count()").unwrap_err();
    let s = e.to_string();
    assert!(s.contains("unknown operator 'summarise'"), "{s}");
    assert!(s.contains("did you mean 'summarize'"), "{s}");
    assert!(s.contains("line 2, column 3"), "{s}");
    let e = parse("T | where (a == 1").unwrap_err().to_string();
    assert!(e.contains("expected ')'"), "{e}");
    assert!(parse("let x = 1;").is_err());
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let text = format!("print {}1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(parse(&text).is_err());
}
