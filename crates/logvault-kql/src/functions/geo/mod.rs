//! Geospatial functions (`geo_*`): distances, measures and predicates on the sphere as Kusto
//! computes them (`sphere`), GeoJSON and WKT shapes (`shape`), operations between shapes
//! (`ops`), and geohash, S2 and H3 grid cells (`cells`). An invalid coordinate, shape, level or
//! tolerance gives null, never an error.

mod cells;
mod ops;
pub(crate) mod shape;
pub(crate) mod sphere;

use serde_json::Value;

use super::{FnCall, Impl, a0, at};
use crate::error::KqlError;
use crate::plan::TExpr;
use crate::types::KustoType;
use crate::udf::value::Val;
use shape::{Ll, Shape, valid_ll};

pub(crate) const FUNCTIONS: &[(&str, Impl)] = &[
    ("geo_distance_2points", distance_2points),
    ("geo_distance_point_to_line", distance_point_to_line),
    ("geo_distance_point_to_polygon", distance_point_to_polygon),
    ("geo_closest_point_on_line", closest_point_on_line),
    ("geo_closest_point_on_polygon", closest_point_on_polygon),
    ("geo_angle", angle),
    ("geo_azimuth", azimuth),
    ("geo_point_in_circle", point_in_circle),
    ("geo_point_in_polygon", point_in_polygon),
    ("geo_line_centroid", line_centroid),
    ("geo_line_length", line_length),
    ("geo_line_interpolate_point", line_interpolate_point),
    ("geo_line_locate_point", line_locate_point),
    ("geo_line_densify", line_densify),
    ("geo_line_simplify", line_simplify),
    ("geo_polygon_area", polygon_area),
    ("geo_polygon_perimeter", polygon_perimeter),
    ("geo_polygon_densify", polygon_densify),
    ("geo_polygon_simplify", polygon_simplify),
    ("geo_polygon_centroid", polygon_centroid),
    ("geo_from_wkt", from_wkt),
    ("geo_intersects_2lines", intersects_2lines),
    ("geo_intersection_2lines", intersection_2lines),
    (
        "geo_intersects_line_with_polygon",
        intersects_line_with_polygon,
    ),
    (
        "geo_intersection_line_with_polygon",
        intersection_line_with_polygon,
    ),
    ("geo_intersects_2polygons", intersects_2polygons),
    ("geo_intersection_2polygons", intersection_2polygons),
    ("geo_union_lines_array", union_lines_array),
    ("geo_union_polygons_array", union_polygons_array),
    ("geo_simplify_polygons_array", simplify_polygons_array),
    ("geo_point_to_geohash", point_to_geohash),
    ("geo_geohash_to_central_point", geohash_to_central_point),
    ("geo_geohash_to_polygon", geohash_to_polygon),
    ("geo_geohash_neighbors", geohash_neighbors),
    ("geo_point_to_s2cell", point_to_s2cell),
    ("geo_s2cell_to_central_point", s2cell_to_central_point),
    ("geo_s2cell_to_polygon", s2cell_to_polygon),
    ("geo_s2cell_neighbors", s2cell_neighbors),
    ("geo_s2cell_level", s2cell_level),
    ("geo_polygon_to_s2cells", polygon_to_s2cells),
    ("geo_point_to_h3cell", point_to_h3cell),
    ("geo_h3cell_to_central_point", h3cell_to_central_point),
    ("geo_h3cell_to_polygon", h3cell_to_polygon),
    ("geo_h3cell_parent", h3cell_parent),
    ("geo_h3cell_children", h3cell_children),
    ("geo_h3cell_level", h3cell_level),
    ("geo_h3cell_neighbors", h3cell_neighbors),
    ("geo_polygon_to_h3cells", polygon_to_h3cells),
];

/// The default tolerance of densify and simplify, in meters.
const TOLERANCE: f64 = 10.0;

/// The coordinate at arguments `i` and `i + 1` (longitude, latitude).
fn ll_at(v: &[Val], i: usize) -> Option<Ll> {
    let (lng, lat) = (at(v, i).as_f64()?, at(v, i + 1).as_f64()?);
    valid_ll(lng, lat).then_some((lng, lat))
}

fn real(x: Option<f64>) -> Val {
    x.filter(|x| x.is_finite()).map_or(Val::Null, Val::Real)
}

fn dynamic(s: Option<Shape>) -> Val {
    s.map_or(Val::Null, |s| shape::val(&s))
}

fn point_val(p: Option<Ll>) -> Val {
    dynamic(p.map(Shape::Point))
}

fn strings(x: Option<Vec<String>>) -> Val {
    x.map_or(Val::Null, |xs| {
        Val::Dynamic(Value::Array(xs.into_iter().map(Value::String).collect()))
    })
}

fn lines_at(v: &[Val], i: usize) -> Option<Vec<Vec<Ll>>> {
    shape::lines(&shape::parse(at(v, i))?)
}

fn polys_at(v: &[Val], i: usize) -> Option<Vec<shape::Rings>> {
    shape::polygons(&shape::parse(at(v, i))?)
}

/// An optional tolerance argument in meters (default 10, at least 0.1).
fn tolerance(v: &[Val], i: usize, min: f64, max: f64) -> Option<f64> {
    if v.len() <= i || at(v, i).is_null() {
        return Some(TOLERANCE);
    }
    at(v, i).as_f64().filter(|t| (min..=max).contains(t))
}

/// An optional integer argument with its default.
fn int_or(v: &[Val], i: usize, default: i64) -> Option<i64> {
    if v.len() <= i {
        Some(default)
    } else {
        at(v, i).as_i64()
    }
}

fn text(v: &[Val], i: usize) -> String {
    at(v, i).to_text()
}

macro_rules! geo_fn {
    ($name:ident, $min:expr, $max:expr, $ret:expr, |$v:ident| $body:expr) => {
        fn $name(c: &mut FnCall<'_>) -> Result<TExpr, KqlError> {
            c.arity($min, $max)?;
            Ok(c.row($ret, |$v| $body))
        }
    };
}

geo_fn!(distance_2points, 4, 4, KustoType::Real, |v| real(
    ll_at(v, 0)
        .zip(ll_at(v, 2))
        .map(|(a, b)| sphere::distance(a, b))
));

fn point_line_distance(x: Ll, lines: &[Vec<Ll>]) -> Option<f64> {
    let p = shape::point(x);
    lines
        .iter()
        .filter_map(|l| sphere::closest_on_line(&p, l))
        .map(|(c, _)| sphere::angle(&p, &c) * sphere::EARTH_RADIUS)
        .reduce(f64::min)
}

geo_fn!(distance_point_to_line, 3, 3, KustoType::Real, |v| real(
    ll_at(v, 0)
        .zip(lines_at(v, 2))
        .and_then(|(x, ls)| point_line_distance(x, &ls))
));

geo_fn!(distance_point_to_polygon, 3, 3, KustoType::Real, |v| real(
    ll_at(v, 0)
        .zip(polys_at(v, 2))
        .map(|(x, ps)| sphere::distance_to_polygons(&ps, x))
));

fn closest_on_lines(x: Ll, lines: &[Vec<Ll>]) -> Option<Ll> {
    let p = shape::point(x);
    lines
        .iter()
        .filter_map(|l| sphere::closest_on_line(&p, l))
        .min_by(|a, b| sphere::angle(&p, &a.0).total_cmp(&sphere::angle(&p, &b.0)))
        .map(|(c, _)| shape::coord(&c))
}

geo_fn!(closest_point_on_line, 3, 3, KustoType::Dynamic, |v| {
    point_val(
        ll_at(v, 0)
            .zip(lines_at(v, 2))
            .and_then(|(x, ls)| closest_on_lines(x, &ls)),
    )
});

geo_fn!(closest_point_on_polygon, 3, 3, KustoType::Dynamic, |v| {
    point_val(ll_at(v, 0).zip(polys_at(v, 2)).and_then(|(x, ps)| {
        if sphere::polygons_contain(&ps, x) {
            return Some(x);
        }
        let rings: Vec<Vec<Ll>> = ps.into_iter().flatten().collect();
        closest_on_lines(x, &rings)
    }))
});

geo_fn!(angle, 6, 6, KustoType::Real, |v| {
    let (p1, p2, p3) = (ll_at(v, 0), ll_at(v, 2), ll_at(v, 4));
    real(p1.zip(p2).zip(p3).and_then(|((p1, p2), p3)| {
        let a1 = sphere::azimuth(p2, p1)?;
        let a2 = sphere::azimuth(p2, p3)?;
        Some((a2 - a1).rem_euclid(2.0 * std::f64::consts::PI))
    }))
});

geo_fn!(azimuth, 4, 4, KustoType::Real, |v| real(
    ll_at(v, 0)
        .zip(ll_at(v, 2))
        .and_then(|(a, b)| sphere::azimuth(a, b))
));

geo_fn!(point_in_circle, 5, 5, KustoType::Bool, |v| {
    let r = at(v, 4).as_f64().filter(|r| *r >= 0.0);
    match (ll_at(v, 0), ll_at(v, 2), r) {
        (Some(p), Some(c), Some(r)) => Val::Bool(sphere::distance(p, c) <= r),
        _ => Val::Null,
    }
});

geo_fn!(point_in_polygon, 3, 3, KustoType::Bool, |v| {
    match (ll_at(v, 0), polys_at(v, 2)) {
        (Some(p), Some(ps)) => Val::Bool(sphere::polygons_contain(&ps, p)),
        _ => Val::Null,
    }
});

geo_fn!(line_centroid, 1, 1, KustoType::Dynamic, |v| point_val(
    lines_at(v, 0).and_then(|ls| sphere::line_centroid(&ls))
));

geo_fn!(line_length, 1, 1, KustoType::Real, |v| real(
    lines_at(v, 0)
        .map(|ls| { ls.iter().map(|l| sphere::length(l)).sum::<f64>() * sphere::EARTH_RADIUS })
));

geo_fn!(line_interpolate_point, 2, 2, KustoType::Dynamic, |v| {
    let line = lines_at(v, 0).filter(|ls| ls.len() == 1);
    point_val(
        line.zip(at(v, 1).as_f64())
            .and_then(|(ls, f)| sphere::interpolate(&ls[0], f)),
    )
});

geo_fn!(line_locate_point, 3, 3, KustoType::Real, |v| {
    let line = lines_at(v, 0).filter(|ls| ls.len() == 1);
    real(
        line.zip(ll_at(v, 1))
            .and_then(|(ls, x)| sphere::locate(&ls[0], x)),
    )
});

geo_fn!(line_densify, 1, 3, KustoType::Dynamic, |v| {
    let t = tolerance(v, 1, 0.1, 10_000.0);
    dynamic(lines_at(v, 0).zip(t).map(|(ls, t)| {
        let ls: Vec<Vec<Ll>> = ls.iter().map(|l| sphere::densify(l, t)).collect();
        if ls.len() == 1 {
            Shape::Line(ls.into_iter().next().unwrap_or_default())
        } else {
            Shape::MultiLine(ls)
        }
    }))
});

geo_fn!(line_simplify, 1, 2, KustoType::Dynamic, |v| {
    let t = tolerance(v, 1, 0.0, f64::MAX);
    dynamic(lines_at(v, 0).zip(t).map(|(ls, t)| {
        let ls: Vec<Vec<Ll>> = ls.iter().map(|l| sphere::simplify(l, t)).collect();
        if ls.len() == 1 {
            Shape::Line(ls.into_iter().next().unwrap_or_default())
        } else {
            Shape::MultiLine(ls)
        }
    }))
});

geo_fn!(polygon_area, 1, 1, KustoType::Real, |v| real(
    polys_at(v, 0).map(|ps| sphere::area(&ps))
));

geo_fn!(polygon_perimeter, 1, 1, KustoType::Real, |v| real(
    polys_at(v, 0).map(|ps| sphere::perimeter(&ps))
));

fn polys_shape(ps: Vec<shape::Rings>) -> Shape {
    if ps.len() == 1 {
        Shape::Polygon(ps.into_iter().next().unwrap_or_default())
    } else {
        Shape::MultiPolygon(ps)
    }
}

geo_fn!(polygon_densify, 1, 3, KustoType::Dynamic, |v| {
    let t = tolerance(v, 1, 0.1, 10_000.0);
    dynamic(polys_at(v, 0).zip(t).map(|(ps, t)| {
        polys_shape(
            ps.iter()
                .map(|rs| rs.iter().map(|r| sphere::densify(r, t)).collect())
                .collect(),
        )
    }))
});

/// Simplified polygons; a ring that collapses drops its polygon (or hole); nothing left is
/// `None`.
fn simplify_polygons(ps: &[shape::Rings], t: f64) -> Option<Vec<shape::Rings>> {
    let mut out = Vec::new();
    for rs in ps {
        let mut kept: shape::Rings = Vec::new();
        for (i, r) in rs.iter().enumerate() {
            let s = sphere::simplify_ring(r, t);
            let json = shape::to_json(&Shape::Polygon(vec![s.clone()]));
            if shape::parse_json(&json).is_some() {
                kept.push(s);
            } else if i == 0 {
                break;
            }
        }
        if !kept.is_empty() {
            out.push(kept);
        }
    }
    (!out.is_empty()).then_some(out)
}

geo_fn!(polygon_simplify, 1, 2, KustoType::Dynamic, |v| {
    let t = tolerance(v, 1, 0.0, f64::MAX);
    dynamic(
        polys_at(v, 0)
            .zip(t)
            .and_then(|(ps, t)| simplify_polygons(&ps, t))
            .map(polys_shape),
    )
});

geo_fn!(polygon_centroid, 1, 1, KustoType::Dynamic, |v| point_val(
    polys_at(v, 0).and_then(|ps| sphere::polygon_centroid(&ps))
));

geo_fn!(from_wkt, 1, 1, KustoType::Dynamic, |v| dynamic(
    a0(v).as_str().and_then(shape::from_wkt)
));

geo_fn!(intersects_2lines, 2, 2, KustoType::Bool, |v| {
    match (lines_at(v, 0), lines_at(v, 1)) {
        (Some(a), Some(b)) if a.len() == 1 && b.len() == 1 => {
            Val::Bool(ops::lines_intersect(&a[0], &b[0]))
        }
        _ => Val::Null,
    }
});

geo_fn!(intersection_2lines, 2, 2, KustoType::Dynamic, |v| {
    match (lines_at(v, 0), lines_at(v, 1)) {
        (Some(a), Some(b)) if a.len() == 1 && b.len() == 1 => {
            shape::val(&ops::intersection_2lines(&a[0], &b[0]))
        }
        _ => Val::Null,
    }
});

geo_fn!(intersects_line_with_polygon, 2, 2, KustoType::Bool, |v| {
    match (lines_at(v, 0), polys_at(v, 1)) {
        (Some(ls), Some(ps)) => Val::Bool(!ops::clip_lines(&ls, &ps).is_empty()),
        _ => Val::Null,
    }
});

geo_fn!(
    intersection_line_with_polygon,
    2,
    2,
    KustoType::Dynamic,
    |v| {
        match (lines_at(v, 0), polys_at(v, 1)) {
            (Some(ls), Some(ps)) => shape::val(&ops::intersection_line_polygon(&ls, &ps)),
            _ => Val::Null,
        }
    }
);

geo_fn!(intersects_2polygons, 2, 2, KustoType::Bool, |v| {
    match (polys_at(v, 0), polys_at(v, 1)) {
        (Some(a), Some(b)) => Val::Bool(ops::polygons_intersect(&a, &b)),
        _ => Val::Null,
    }
});

geo_fn!(intersection_2polygons, 2, 2, KustoType::Dynamic, |v| {
    match (polys_at(v, 0), polys_at(v, 1)) {
        (Some(a), Some(b)) => shape::val(&ops::intersection_polygons(&a, &b)),
        _ => Val::Null,
    }
});

/// The shapes of a dynamic array argument.
fn shapes_at(v: &[Val], i: usize) -> Option<Vec<Shape>> {
    match at(v, i) {
        Val::Dynamic(Value::Array(xs)) => xs.iter().map(shape::parse_json).collect(),
        _ => None,
    }
}

geo_fn!(union_lines_array, 1, 1, KustoType::Dynamic, |v| {
    let lines: Option<Vec<Vec<Ll>>> = shapes_at(v, 0).and_then(|ss| {
        ss.iter()
            .map(shape::lines)
            .collect::<Option<Vec<_>>>()
            .map(|x| x.into_iter().flatten().collect())
    });
    dynamic(
        lines
            .filter(|l| !l.is_empty())
            .map(|l| ops::union_lines(&l)),
    )
});

fn polygons_of(v: &[Val], i: usize) -> Option<Vec<shape::Rings>> {
    shapes_at(v, i).and_then(|ss| {
        ss.iter()
            .map(shape::polygons)
            .collect::<Option<Vec<_>>>()
            .map(|x| x.into_iter().flatten().collect::<Vec<_>>())
    })
}

geo_fn!(union_polygons_array, 1, 1, KustoType::Dynamic, |v| dynamic(
    polygons_of(v, 0)
        .filter(|p| !p.is_empty())
        .map(|p| ops::union_polygons(&p))
));

geo_fn!(simplify_polygons_array, 1, 2, KustoType::Dynamic, |v| {
    let t = tolerance(v, 1, 0.0, f64::MAX);
    dynamic(
        polygons_of(v, 0)
            .zip(t)
            .and_then(|(p, t)| simplify_polygons(&p, t))
            .map(|p| ops::union_polygons(&p)),
    )
});

geo_fn!(point_to_geohash, 2, 3, KustoType::String, |v| {
    let acc = int_or(v, 2, 5);
    ll_at(v, 0)
        .zip(acc)
        .and_then(|(p, a)| cells::geohash(p, a))
        .map_or(Val::Str(String::new()), Val::Str)
});

geo_fn!(geohash_to_central_point, 1, 1, KustoType::Dynamic, |v| {
    point_val(cells::geohash_center(&text(v, 0)))
});

geo_fn!(geohash_to_polygon, 1, 1, KustoType::Dynamic, |v| dynamic(
    cells::geohash_polygon(&text(v, 0))
));

geo_fn!(geohash_neighbors, 1, 1, KustoType::Dynamic, |v| strings(
    cells::geohash_neighbors(&text(v, 0))
));

geo_fn!(point_to_s2cell, 2, 3, KustoType::String, |v| {
    let level = int_or(v, 2, 11);
    ll_at(v, 0)
        .zip(level)
        .and_then(|(p, l)| cells::s2cell(p, l))
        .map_or(Val::Str(String::new()), Val::Str)
});

geo_fn!(s2cell_to_central_point, 1, 1, KustoType::Dynamic, |v| {
    point_val(cells::s2cell_center(&text(v, 0)))
});

geo_fn!(s2cell_to_polygon, 1, 1, KustoType::Dynamic, |v| dynamic(
    cells::s2cell_polygon(&text(v, 0))
));

geo_fn!(s2cell_neighbors, 1, 1, KustoType::Dynamic, |v| strings(
    cells::s2cell_neighbors(&text(v, 0))
));

geo_fn!(s2cell_level, 1, 1, KustoType::Int, |v| cells::s2cell_level(
    &text(v, 0)
)
.and_then(|l| i32::try_from(l).ok())
.map_or(Val::Null, Val::Int));

geo_fn!(polygon_to_s2cells, 1, 3, KustoType::Dynamic, |v| {
    let level = int_or(v, 1, 11).filter(|l| (0..=30).contains(l));
    strings(
        polys_at(v, 0)
            .zip(level)
            .and_then(|(ps, l)| cells::polygon_to_s2cells(&ps, l as u64, 65_536)),
    )
});

geo_fn!(point_to_h3cell, 2, 3, KustoType::String, |v| {
    let res = int_or(v, 2, 6);
    ll_at(v, 0)
        .zip(res)
        .and_then(|(p, r)| cells::h3cell(p, r))
        .map_or(Val::Str(String::new()), Val::Str)
});

geo_fn!(h3cell_to_central_point, 1, 1, KustoType::Dynamic, |v| {
    point_val(cells::h3cell_center(&text(v, 0)))
});

geo_fn!(h3cell_to_polygon, 1, 1, KustoType::Dynamic, |v| dynamic(
    cells::h3cell_polygon(&text(v, 0))
));

geo_fn!(h3cell_parent, 1, 2, KustoType::String, |v| {
    let res = if v.len() > 1 { at(v, 1).as_i64() } else { None };
    if v.len() > 1 && res.is_none() {
        return Val::Str(String::new());
    }
    cells::h3cell_parent(&text(v, 0), res).map_or(Val::Str(String::new()), Val::Str)
});

geo_fn!(h3cell_children, 1, 2, KustoType::Dynamic, |v| {
    let res = if v.len() > 1 { at(v, 1).as_i64() } else { None };
    strings(cells::h3cell_children(&text(v, 0), res))
});

geo_fn!(h3cell_level, 1, 1, KustoType::Int, |v| cells::h3cell_level(
    &text(v, 0)
)
.and_then(|l| i32::try_from(l).ok())
.map_or(Val::Null, Val::Int));

geo_fn!(h3cell_neighbors, 1, 1, KustoType::Dynamic, |v| strings(
    cells::h3cell_neighbors(&text(v, 0))
));

geo_fn!(polygon_to_h3cells, 1, 3, KustoType::Dynamic, |v| {
    let res = int_or(v, 1, 6);
    strings(
        polys_at(v, 0)
            .zip(res)
            .and_then(|(ps, r)| cells::polygon_to_h3cells(&ps, r)),
    )
});
