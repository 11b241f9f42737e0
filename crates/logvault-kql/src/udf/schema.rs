//! `buildschema`: the minimal schema that admits every dynamic value of a column. A property
//! with one type shows it (`"long"`, `{"w": "string"}`); with several, the list of them in
//! the order seen; an array's elements show under `` `indexer` ``.

use serde_json::{Map, Value};

/// The schema of the values added so far.
#[derive(Debug, Default)]
pub struct Node {
    alts: Vec<Alt>,
}

#[derive(Debug)]
enum Alt {
    Type(&'static str),
    Object(Vec<(String, Node)>),
    Array(Box<Node>),
}

fn type_name(v: &Value) -> Option<&'static str> {
    Some(match v {
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "long",
        Value::Number(_) => "double",
        Value::String(_) => "string",
        _ => return None,
    })
}

impl Node {
    /// Widens the schema to admit `v` (nulls add nothing).
    pub fn add(&mut self, v: &Value) {
        match v {
            Value::Null => {}
            Value::Object(m) => {
                let fields = match self.alts.iter_mut().find_map(|a| match a {
                    Alt::Object(f) => Some(f),
                    _ => None,
                }) {
                    Some(f) => f,
                    None => {
                        self.alts.push(Alt::Object(Vec::new()));
                        match self.alts.last_mut() {
                            Some(Alt::Object(f)) => f,
                            _ => return,
                        }
                    }
                };
                for (k, x) in m {
                    match fields.iter_mut().find(|(n, _)| n == k) {
                        Some((_, node)) => node.add(x),
                        None => {
                            let mut node = Node::default();
                            node.add(x);
                            fields.push((k.clone(), node));
                        }
                    }
                }
            }
            Value::Array(items) => {
                let node = match self.alts.iter_mut().find_map(|a| match a {
                    Alt::Array(n) => Some(n),
                    _ => None,
                }) {
                    Some(n) => n,
                    None => {
                        self.alts.push(Alt::Array(Box::default()));
                        match self.alts.last_mut() {
                            Some(Alt::Array(n)) => n,
                            _ => return,
                        }
                    }
                };
                for x in items {
                    node.add(x);
                }
            }
            other => {
                if let Some(t) = type_name(other)
                    && !self
                        .alts
                        .iter()
                        .any(|a| matches!(a, Alt::Type(x) if *x == t))
                {
                    self.alts.push(Alt::Type(t));
                }
            }
        }
    }

    /// The schema as JSON (`None` when no value was seen).
    pub fn finish(self) -> Option<Value> {
        let mut out: Vec<Value> = Vec::new();
        for a in self.alts {
            match a {
                Alt::Type(t) => out.push(Value::String(t.to_owned())),
                Alt::Object(fields) => {
                    let mut m = Map::new();
                    for (k, node) in fields {
                        if let Some(s) = node.finish() {
                            m.insert(k, s);
                        }
                    }
                    out.push(Value::Object(m));
                }
                Alt::Array(node) => {
                    let mut m = Map::new();
                    if let Some(s) = node.finish() {
                        m.insert("`indexer`".to_owned(), s);
                    }
                    out.push(Value::Object(m));
                }
            }
        }
        match out.len() {
            0 => None,
            1 => out.pop(),
            _ => Some(Value::Array(out)),
        }
    }
}
